"""Agents under one budget on the synthetic TableWorld: baselines and RL give P_fail."""

from __future__ import annotations

import numpy as np
import pytest
from diagnosis_fixtures import catalog
from stable_baselines3.common.vec_env import DummyVecEnv

from robomd_diagnoser.agents import RLAgent, ThompsonAgent, UniformAgent, make_agent
from robomd_diagnoser.config import AGENT_PARAMS, AgentConfig
from robomd_diagnoser.diagnosis_env import DiagnosisEnv
from robomd_diagnoser.table_world import TableWorld

ONE_BAD = {"a": 0.0, "b": 0.0, "c": 1.0, "d": 0.0, "e": 0.0}


def make_venv(rates, n_envs=1, cap=1, records=None):
    def factory(i):
        return lambda: DiagnosisEnv(TableWorld(catalog(), rates, image_size=36), horizon=30,
                                    max_perturbations=cap, env_index=i, n_envs=n_envs,
                                    on_rollout=records.append if records is not None else None)
    return DummyVecEnv([factory(i) for i in range(n_envs)])


def run(agent, venv, budget):
    seen = []

    def hook(done, infos):
        seen.append(done)
        return True

    agent.run(venv, budget, hook)
    return seen


def test_uniform_sweeps_round_robin():
    records = []
    agent = UniformAgent(5, seed=0)
    seen = run(agent, make_venv(ONE_BAD, n_envs=2, records=records), 20)
    assert seen[-1] == 20 and len(records) == 20
    assert [r.perturbations[0] for r in records[:5]] == ["a", "b", "c", "d", "e"]
    assert agent.trials.tolist() == [4] * 5 and agent.failures.tolist() == [0, 0, 4, 0, 0]
    p = agent.failure_likelihood(np.zeros((1, 36, 36, 3), np.uint8))
    assert p.sum() == pytest.approx(1.0)
    # posterior means (1+4)/(2+4) for c and 1/6 elsewhere, normalised
    assert p[2] == pytest.approx((5 / 6) / (5 / 6 + 4 / 6))


def test_thompson_concentrates_on_the_failing_perturbation():
    agent = ThompsonAgent(5, seed=1)
    run(agent, make_venv(ONE_BAD), 40)
    assert agent.trials.sum() == 40
    assert agent.trials.argmax() == 2 and agent.trials[2] > 20
    assert agent.failure_likelihood(np.zeros((1, 36, 36, 3), np.uint8)).argmax() == 2


def test_hook_can_stop_an_agent():
    agent = UniformAgent(5, seed=0)
    agent.run(make_venv(ONE_BAD), 50, lambda done, infos: done < 7)
    assert agent.trials.sum() == 7


@pytest.mark.parametrize("kind,params", [("ppo", {"n_steps": 32}), ("a2c", {"n_steps": 8})])
def test_rl_agents_learn_the_failing_perturbation(kind, params):
    agent = RLAgent(kind, AGENT_PARAMS[kind] | params, seed=0)
    venv = make_venv(ONE_BAD, cap=3)
    seen = run(agent, venv, 256)
    assert seen[-1] == 256
    nominal = np.stack([venv.env_method("nominal_observation", s, indices=[0])[0]
                        for s in range(2)])
    p = agent.failure_likelihood(nominal)
    assert p.shape == (5,) and p.sum() == pytest.approx(1.0)
    assert p.argmax() == 2 and p[2] > 0.2


def test_rl_agent_saves_a_checkpoint(tmp_path):
    agent = RLAgent("ppo", AGENT_PARAMS["ppo"] | {"n_steps": 8}, seed=0)
    run(agent, make_venv(ONE_BAD), 8)
    assert agent.save(tmp_path / "agent").name == "agent.zip"
    assert (tmp_path / "agent.zip").stat().st_size > 0


@pytest.mark.parametrize("kind", ["ppo", "a2c", "uniform", "thompson"])
def test_make_agent_builds_every_type(kind):
    agent = make_agent(AgentConfig(kind, AGENT_PARAMS[kind]), 5, seed=0)
    assert agent.kind == kind
