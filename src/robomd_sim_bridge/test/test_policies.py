"""Sim-side policies: the shipped Lift BC weights, the scripted expert, demonstration collection."""

from __future__ import annotations

import json
import pathlib
from types import SimpleNamespace

import numpy as np
import pytest

from robomd_diagnoser.catalog import load_catalog
from robomd_diagnoser.cli.main import main
from robomd_diagnoser.learning.bc_policy import BCPolicy
from robomd_diagnoser.learning.data import load_demos
from robomd_diagnoser.paths import find_config
from robomd_diagnoser.policy import PolicyError, make_policy
from robomd_sim_bridge.demos import DemoError, DemoSettings, collect_demos
from robomd_sim_bridge.plugins import SHIPPED_BC

LIFT = find_config("catalogs/lift.yaml")


@pytest.fixture(scope="module")
def world():
    from robomd_sim_bridge.world import RobosuiteWorld

    w = RobosuiteWorld(load_catalog(LIFT))
    yield w
    w.close()


def test_shipped_bc_acts_on_a_real_observation(world) -> None:
    assert SHIPPED_BC.is_file() and SHIPPED_BC.stat().st_size < 5_000_000
    policy = make_policy("bc", world)
    assert isinstance(policy, BCPolicy) and policy.uses_image
    assert policy.meta["training"]["episodes"] > 0
    world.reset(0)
    obs = world.observation()
    policy.reset()
    action = policy.act(obs)
    assert action.shape == (7,) and np.all(np.isfinite(action))
    assert np.all(np.abs(action) <= 1.0)


def test_expert_via_make_policy_lifts_the_cube(world) -> None:
    world.policy = make_policy("expert", world)
    world.reset(3)
    world.apply([])
    world.execute(150, 3)
    assert world.judge().success


@pytest.mark.parametrize("fake, match", [
    (SimpleNamespace(catalog=SimpleNamespace(task="stack"), camera_size=84),
     "no shipped bc policy for task 'stack'"),
    (SimpleNamespace(catalog=SimpleNamespace(task="lift"), camera_size=64), "--camera-size 84"),
])
def test_shipped_bc_refuses_other_scenes(fake: SimpleNamespace, match: str) -> None:
    with pytest.raises(PolicyError, match=match):
        make_policy("bc", fake)


def test_unknown_spec_is_explained(world) -> None:
    with pytest.raises(PolicyError, match="unknown policy kind 'diffusion'; installed: bc, "):
        make_policy("diffusion", world)


def test_collect_demos_under_a_perturbation_and_resume(tmp_path: pathlib.Path) -> None:
    settings = DemoSettings(catalog=str(LIFT), perturbations=("table_red",), noise=0.3)
    lines: list[str] = []
    summary = collect_demos(settings, tmp_path, 2, seed=5, log=lines.append)
    assert summary.saved == 2 and summary.directory == tmp_path / "table_red"
    assert [p.name for p in summary.files] == ["table_red_s00005.npz", "table_red_s00006.npz"]
    data = load_demos(tmp_path)
    assert len(data.files) == 2 and len(data.image) == summary.frames
    assert data.image.shape[1:] == (84, 84, 3) and np.all(np.abs(data.action) <= 1.0)
    with np.load(summary.files[0]) as z:
        assert z["info_perturbations"].tolist() == ["table_red"]
    manifest = json.loads((summary.directory / "manifest.json").read_text())
    assert manifest["settings"]["perturbations"] == ["table_red"]
    again = collect_demos(settings, tmp_path, 2, seed=5, log=lines.append)
    assert again.files == summary.files and again.attempts == summary.attempts
    with pytest.raises(DemoError, match="collected with settings"):
        collect_demos(DemoSettings(catalog=str(LIFT), perturbations=("table_red",), noise=0.1),
                      tmp_path, 2, seed=5)


def test_eval_policy_command(capsys: pytest.CaptureFixture) -> None:
    assert main(["eval-policy", "--policy", "expert", "--rollouts", "1", "--seed", "2"]) == 0
    out = capsys.readouterr().out
    assert "expert on lift / nominal: success 1/1 = 1.00" in out
    assert "steps to success: median" in out


@pytest.mark.parametrize("command", [
    ["collect-demos", "--episodes", "1", "--out", "unused"],
    ["collect-state-demos", "--episodes", "1", "--out", "unused"],
    ["eval-policy", "--rollouts", "1"],
])
def test_commands_reject_unknown_perturbation(command: list[str],
                                              capsys: pytest.CaptureFixture) -> None:
    assert main([*command, "--perturb", "cube_purple"]) == 2
    err = capsys.readouterr().err
    assert "unknown perturbation 'cube_purple'" in err and "cube_red" in err


@pytest.mark.parametrize("verb", ["collect-demos", "collect-state-demos"])
@pytest.mark.parametrize("extra,named", [(["--episodes", "0"], "--episodes"),
                                         (["--episodes", "1", "--noise", "-0.1"], "--noise"),
                                         (["--episodes", "1", "--horizon", "0"], "--horizon")])
def test_demo_commands_name_a_bad_argument(verb: str, extra: list[str], named: str,
                                           tmp_path: pathlib.Path,
                                           capsys: pytest.CaptureFixture) -> None:
    assert main([verb, "--out", str(tmp_path / "demos"), *extra]) == 2
    assert named in capsys.readouterr().err
    assert not (tmp_path / "demos").exists(), "nothing is written before the check"


@pytest.mark.slow
def test_collect_demos_in_worker_processes(tmp_path: pathlib.Path) -> None:
    summary = collect_demos(DemoSettings(catalog=str(LIFT)), tmp_path, 3, workers=2, seed=0,
                            log=lambda line: None)
    assert summary.saved == 3
    # episodes that finished after the third success are removed: the batch is the first 3 seeds
    assert sorted(summary.directory.glob("*.npz")) == summary.files
    assert [p.name for p in summary.files] == [f"nominal_s0000{i}.npz" for i in range(3)]
