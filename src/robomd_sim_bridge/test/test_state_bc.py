"""The low-dimensional-state BC subject: object-state observation, demos without rendering,
training, the shipped bc_state weights."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from robomd_diagnoser.catalog import load_catalog
from robomd_diagnoser.cli.main import main
from robomd_diagnoser.learning.bc_policy import BCPolicy
from robomd_diagnoser.learning.state_bc import (
    StateBCError,
    StateBCPolicy,
    StateTrainConfig,
    load_state_demos,
    train_state_bc,
)
from robomd_diagnoser.paths import find_config
from robomd_diagnoser.policy import PolicyError, make_policy
from robomd_sim_bridge.plugins import SHIPPED_BC, SHIPPED_STATE_BC
from robomd_sim_bridge.state_demos import collect_state_demos

LIFT = find_config("catalogs/lift.yaml")


@pytest.fixture(scope="module")
def world():
    from robomd_sim_bridge.world import RobosuiteWorld

    w = RobosuiteWorld(load_catalog(LIFT))
    yield w
    w.close()


def test_object_state_observation(world) -> None:
    world.reset(4)
    obs = world.observation(image=False)
    assert "image" not in obs and obs["object"].shape == (10,)
    assert np.allclose(obs["object"][:3], obs["object_pos"])
    assert np.allclose(obs["object"][3:7], obs["object_quat"])
    assert np.allclose(obs["object"][7:], obs["object_pos"] - obs["eef_pos"])


def test_shipped_state_bc_lifts_the_cube_without_rendering(world) -> None:
    assert SHIPPED_STATE_BC.is_file() and SHIPPED_STATE_BC.stat().st_size < 2_000_000
    policy = make_policy("bc_state", world)
    assert isinstance(policy, StateBCPolicy) and policy.uses_image is False
    assert policy.meta["training"]["episodes"] > 0
    rendered = []
    render = world.render
    world.render = lambda *a, **k: rendered.append(1) or render(*a, **k)
    try:
        world.policy = policy
        world.reset(1000)
        world.apply([])
        world.execute(150, 1000)
    finally:
        world.render = render
        world.policy = None
    assert world.judge().success and not rendered


def test_state_policy_names_a_missing_key_and_refuses_other_weights() -> None:
    policy = make_policy(f"bc_state:{SHIPPED_STATE_BC}")
    with pytest.raises(PolicyError, match="needs observation key 'object'"):
        policy.act({"eef_pos": np.zeros(3), "gripper": np.ones(1)})
    with pytest.raises(StateBCError, match="not a robomd-state-bc file.*bc:<path>"):
        make_policy(f"bc_state:{SHIPPED_BC}")
    assert isinstance(make_policy(f"bc:{SHIPPED_BC}"), BCPolicy)


def test_collect_train_and_load(tmp_path: pathlib.Path) -> None:
    summary = collect_state_demos(LIFT, tmp_path / "demos", 2, seed=3, log=lambda line: None)
    assert summary.successes == 2 and len(summary.files) == 2
    inputs, actions, episode = load_state_demos(tmp_path / "demos")
    assert inputs.shape == (summary.frames, 14) and actions.shape == (summary.frames, 7)
    assert set(episode.tolist()) == {0, 1}
    again = collect_state_demos(LIFT, tmp_path / "demos", 2, seed=3, log=lambda line: None)
    assert again.attempts == 0 and again.files == summary.files  # resumed, nothing re-run
    out = tmp_path / "w.pt"
    training = train_state_bc(tmp_path / "demos", out,
                              StateTrainConfig(epochs=2, hidden=16, layers=1, val_fraction=0.5),
                              log=lambda line: None)
    assert training["frames"] == summary.frames and training["val_episodes"] == 1
    policy = make_policy(f"bc_state:{out}")
    action = policy.act({"eef_pos": inputs[0, :3], "gripper": inputs[0, 3:4],
                         "object": inputs[0, 4:]})
    assert action.shape == (7,) and np.all(np.abs(action) <= 1.0)


def test_train_state_bc_rejects_image_demos_and_bad_flags(tmp_path: pathlib.Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    from robomd_diagnoser.learning.data import save_demo

    save_demo(tmp_path / "img.npz", {"image": np.zeros((2, 8, 8, 3), np.uint8),
                                     "eef_pos": np.zeros((2, 3)), "gripper": np.zeros((2, 1)),
                                     "action": np.zeros((2, 7))})
    assert main(["train-state-bc", "--demos", str(tmp_path), "--out", str(tmp_path / "o.pt")]) \
        == 2
    assert "missing array 'object'" in capsys.readouterr().err
    assert main(["train-state-bc", "--demos", str(tmp_path), "--out", "x", "--epochs", "0"]) == 2
    assert "--epochs must be >= 1" in capsys.readouterr().err
