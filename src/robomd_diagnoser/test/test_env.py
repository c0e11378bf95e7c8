"""The diagnosis environment (Algorithm 1's MDP) over the synthetic TableWorld."""

from __future__ import annotations

import numpy as np
import pytest
from diagnosis_fixtures import catalog
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from robomd_diagnoser.config import RewardConfig
from robomd_diagnoser.diagnosis_env import DiagnosisEnv, ObservationCache, ReplayError, rollout_key
from robomd_diagnoser.table_world import TableWorld
from robomd_diagnoser.world import RolloutStatus

# a always fails, b never does (nominal never fails)
SURE = {"a": 1.0, "b": 0.0, "c": 0.0, "d": 0.0, "e": 0.0}


def make_env(rates=SURE, records=None, **kw) -> DiagnosisEnv:
    world = TableWorld(catalog(), rates, image_size=kw.pop("image_size", 40),
                       abort_rate=kw.pop("abort_rate", 0.0))
    on_rollout = records.append if records is not None else None
    return DiagnosisEnv(world, horizon=30, on_rollout=on_rollout, **kw)


@pytest.mark.parametrize("checker", [gym_check_env, sb3_check_env])
def test_env_passes_the_checkers(checker):
    checker(make_env(), skip_render_check=True) if checker is gym_check_env else checker(make_env())


def test_spaces_follow_the_catalog_and_the_world():
    env = make_env(image_size=48)
    assert env.action_space.n == len(catalog())
    assert env.observation_space.shape == (48, 48, 3)
    assert env.observation_space.dtype == np.uint8


def test_success_keeps_the_set_and_failure_ends_the_episode():
    records = []
    env = make_env(records=records, rewards=RewardConfig(failure=2.0, success_per_step=0.01))
    obs, _ = env.reset()
    assert not obs.any()
    obs, reward, terminated, truncated, info = env.step(1)  # b: success
    assert info["success"] is True and not terminated and not truncated
    assert reward == pytest.approx(-0.01 * info["steps"])
    assert obs.any(), "the next state shows the accumulated perturbation"
    obs, reward, terminated, _, info = env.step(0)  # a on top of b: failure
    assert info["perturbations"] == ["b", "a"] and info["success"] is False
    assert reward == 2.0 and terminated
    assert [r.key for r in records] == [rollout_key(0, 0), rollout_key(1, 0)]
    assert [r.agent_step for r in records] == [0, 1]
    assert records[1].perturbations == ("b", "a") and records[1].failed
    obs, _ = env.reset()
    assert not obs.any(), "after a failure the episode restarts from the nominal scene"


def test_episode_cap_ends_a_run_of_successes():
    env = make_env(max_perturbations=2)
    env.reset()
    assert not env.step(1)[2]
    _, _, terminated, _, info = env.step(2)
    assert terminated and info["perturbations"] == ["b", "c"]


def test_aborted_rollouts_are_retried_and_never_failures():
    records = []
    env = make_env(records=records, abort_rate=1.0, max_retries=2)
    obs0, _ = env.reset()
    obs, reward, terminated, _, info = env.step(0)
    assert reward == 0.0 and not terminated
    assert info["status"] == RolloutStatus.ABORTED.value and info["success"] is None
    assert [r.key for r in records] == [rollout_key(0, k) for k in range(3)]
    assert len({r.seed for r in records}) == 3, "each retry uses a fresh seed"
    assert not any(r.failed for r in records)
    np.testing.assert_array_equal(obs, obs0)
    assert env.step(1)[4]["perturbations"] == ["b"], "the aborted perturbation was not kept"


def test_agent_steps_interleave_across_parallel_envs():
    records = []
    env = make_env(records=records, env_index=1, n_envs=3)
    env.reset()
    for _ in range(3):
        env.step(1)
    assert [r.agent_step for r in records] == [1, 4, 7]


class NoRollouts(TableWorld):
    def execute(self, *args, **kwargs):
        raise AssertionError("a stored rollout was run again")


def test_replay_serves_stored_rollouts_without_running_them(tmp_path):
    rates = {"a": 0.5, "b": 0.5, "c": 0.5, "d": 0.5, "e": 0.5}
    records = []
    env = make_env(rates, records=records, obs_cache=ObservationCache(tmp_path))
    actions = [0, 1, 2, 3, 4, 0, 1, 2]
    env.reset()
    first = []
    for a in actions:
        obs, reward, terminated, _, info = env.step(a)
        first.append((obs.copy(), reward, terminated, info["perturbations"]))
        if terminated:
            env.reset()
    replay = {r.key: r for r in records}
    env2 = DiagnosisEnv(NoRollouts(catalog(), rates, image_size=40), horizon=30, replay=replay,
                        obs_cache=ObservationCache(tmp_path))
    env2.reset()
    for a, (obs, reward, terminated, perts) in zip(actions, first, strict=True):
        obs2, reward2, terminated2, _, info = env2.step(a)
        assert info["replayed"] and info["perturbations"] == perts
        assert reward2 == reward and terminated2 == terminated
        np.testing.assert_array_equal(obs2, obs)
        if terminated2:
            env2.reset()


def test_replay_of_a_different_action_is_refused():
    records = []
    env = make_env(records=records)
    env.reset()
    env.step(1)
    env2 = make_env(replay={r.key: r for r in records})
    env2.reset()
    with pytest.raises(ReplayError, match="asked for \\['c'\\]"):
        env2.step(2)


def test_invalid_action_is_rejected():
    env = make_env()
    env.reset()
    with pytest.raises(ValueError, match="not in 0..4"):
        env.step(7)
