"""Scripted experts: Lift succeeds reliably; the others are exercised in the slow suite."""

from __future__ import annotations

import numpy as np
import pytest

from robomd_diagnoser.catalog import load_catalog
from robomd_diagnoser.paths import find_config
from robomd_diagnoser.policy import RolloutPolicy
from robomd_sim_bridge.experts import LiftExpert, make_expert
from robomd_sim_bridge.world import RobosuiteWorld


@pytest.fixture(scope="module")
def lift():
    w = RobosuiteWorld(load_catalog(find_config("catalogs/lift.yaml")), camera_size=64)
    yield w
    w.close()


def test_make_expert_picks_the_task_expert(lift) -> None:
    expert = make_expert(lift)
    assert isinstance(expert, LiftExpert) and isinstance(expert, RolloutPolicy)
    assert expert.uses_image is False


@pytest.mark.parametrize("seed", [0, 1])
def test_lift_expert_lifts_the_cube(lift, seed) -> None:
    lift.policy = make_expert(lift)
    lift.reset(seed)
    result = lift.execute(150, seed)
    outcome = lift.judge()
    assert outcome.success, outcome.reason
    assert result.steps < 100
    assert lift.object_state("cube").world_pos[2] > lift.table_top_z + 0.04


@pytest.mark.parametrize("perturbations", [["cube_bar"], ["cube_large", "table_short_wide"]])
def test_lift_expert_handles_size_changes(lift, perturbations) -> None:
    lift.policy = make_expert(lift)
    lift.reset(2)
    lift.apply(perturbations)
    lift.execute(150, 2)
    assert lift.judge().success


def test_action_noise_perturbs_the_arm_not_the_gripper(lift) -> None:
    lift.reset(0)
    clean = make_expert(lift).act({})
    noisy = make_expert(lift, action_noise=0.2, seed=1).act({})
    assert not np.allclose(clean[:6], noisy[:6])
    assert clean[6] == noisy[6] == -1.0
    assert np.all(np.abs(noisy) <= 1.0)


@pytest.mark.parametrize("kwargs, match", [({"action_noise": -0.1}, "standard deviation"),
                                           ({"align_yaw": "sometimes"}, "align_yaw")])
def test_bad_expert_settings_are_refused(lift, kwargs, match) -> None:
    with pytest.raises(ValueError, match=match):
        make_expert(lift, **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("task, horizon", [("stack", 200), ("pick_place_can", 300),
                                           ("nut_assembly_square", 300)])
def test_other_experts_complete_their_task(task, horizon) -> None:
    world = RobosuiteWorld(load_catalog(find_config(f"catalogs/{task}.yaml")), camera_size=64)
    try:
        world.policy = make_expert(world)
        world.execute(horizon, 0)
        assert world.judge().success
    finally:
        world.close()
