"""The automatic reset's place-back on fake hardware (the simulated UR5e), without ROS: the
expert lifts the cube, the runner puts it back through the safety envelope, homes and checks."""

from __future__ import annotations

import numpy as np
import pytest

from robomd_diagnoser.world import RolloutStatus
from robomd_ur5e.fake import (
    FakeDashboard,
    FakeGripper,
    FakeRobot,
    FakeRTDEControl,
    FakeRTDEReceive,
    expert_policy,
    make_fake_robot,
)
from robomd_ur5e.hardware import RobotFault
from robomd_ur5e.runner import DISARMED, ExecutorSettings, PlaceBack, RolloutRunner
from robomd_ur5e.safety import ActionMapper, SafetyEnvelope, SafetyLimits

#: config/ur5e/fake_hardware.yaml's envelope (the expert's rollouts need its speed).
ROLLOUT = SafetyLimits(workspace_min=(-0.3, -0.4, -0.115), workspace_max=(0.65, 0.4, 0.4),
                       max_speed=1.0, max_accel=20.0, max_rot_speed=10.0, max_rot_accel=200.0)
#: The envelope of the place-back test: a speed limit below the place-back's own speed (0.5
#: m/s there), so that the envelope, not the place-back, has the last word.
LIMITS = SafetyLimits(workspace_min=(-0.3, -0.4, -0.115), workspace_max=(0.65, 0.4, 0.4),
                      max_speed=0.08, max_accel=2.0, max_rot_speed=10.0, max_rot_accel=200.0)
SIZE = 84


@pytest.fixture(scope="module")
def robot() -> FakeRobot:
    robot = make_fake_robot("lift", SIZE)
    yield robot
    robot.world.close()


def _cube(robot: FakeRobot) -> np.ndarray:
    return robot.world.to_base(robot.world.object_state("cube").world_pos)


def _resting_z(robot: FakeRobot) -> float:
    """The cube's centre height when it rests on the table, base frame (a reset drops it from
    1 cm above)."""
    w = robot.world
    return float(w.to_base(np.array([0.0, 0.0, w.table_top_z]))[2]
                 + w.object_state("cube").half_size[2])


def _lifted(robot: FakeRobot, **place) -> RolloutRunner:
    """An armed runner whose expert rollout ended with the cube held up."""
    robot.clear_faults()
    robot.reset(0)
    home = tuple(robot.joint_positions())
    runner = RolloutRunner(
        FakeRTDEControl(robot), FakeRTDEReceive(robot), FakeDashboard(robot), FakeGripper(robot),
        expert_policy(), SafetyEnvelope(ROLLOUT), ActionMapper(0.05, 0.5, robot.period),
        lambda: (robot.render(SIZE), 0.0),
        ExecutorSettings(rate=1 / robot.period, home_q=home, home_tolerance=0.05,
                         place=PlaceBack(settle_time=0.0, check_px=3.0, **place)),
        sleep=lambda _s: None)
    runner.arm()
    result = runner.run(80)
    assert result.status == RolloutStatus.COMPLETED and result.end.gripper.object_detected
    return runner


def test_place_back_restores_the_cube_within_the_envelope(robot: FakeRobot) -> None:
    robot.reset(0)
    start = _cube(robot)
    runner = _lifted(robot, speed=0.5)
    runner.envelope = SafetyEnvelope(LIMITS)
    assert _cube(robot)[2] > start[2] + 0.1
    robot.twists.clear()
    robot.positions.clear()
    robot.speedl_args.clear()
    message = runner.place_back()
    assert "scene check" in message, message
    end = _cube(robot)
    assert np.linalg.norm(end[:2] - start[:2]) < 0.02, (start, end)
    assert abs(end[2] - _resting_z(robot)) < 0.003, "the cube rests on the table"
    assert robot.gripper_state().opening > 0.9, "the gripper let go"
    twists = np.array(robot.twists)
    assert len(twists) > 20
    assert np.max(np.linalg.norm(twists[:, :3], axis=1)) <= LIMITS.max_speed + 1e-9
    assert np.max(np.linalg.norm(np.diff(twists[:, :3], axis=0), axis=1)) <= \
        LIMITS.max_accel * robot.period + 1e-9
    assert not np.any(twists[:, 3:]), "the orientation is held"
    assert {a for a, _hold in robot.speedl_args} == {LIMITS.max_accel}
    positions = np.array(robot.positions)
    assert np.all(positions >= np.array(LIMITS.workspace_min) - 1e-3)
    assert np.all(positions <= np.array(LIMITS.workspace_max) + 1e-3)
    assert runner.joint_error() <= 0.05, "homed"
    with pytest.raises(RobotFault, match="no rollout ran"):
        runner.place_back()


def test_place_back_is_refused_when_disarmed_or_not_holding(robot: FakeRobot) -> None:
    runner = _lifted(robot)
    runner.disarm()
    steps = robot.steps
    with pytest.raises(RobotFault, match="disarmed"):
        runner.place_back()
    assert robot.steps == steps, "nothing moved"
    assert DISARMED.startswith("the executor is disarmed")

    runner = _lifted(robot)
    robot.gripper_closed = False  # it dropped the cube
    for _ in range(10):
        robot.step([0.0] * 6)
    steps = robot.steps
    with pytest.raises(RobotFault, match="does not hold the object"):
        runner.place_back()
    assert robot.steps == steps, "nothing moved"


def test_a_place_that_the_box_forbids_is_refused_before_moving(robot: FakeRobot) -> None:
    runner = _lifted(robot, hover=0.6)
    steps = robot.steps
    with pytest.raises(RobotFault, match="outside the workspace box.*place_hover"):
        runner.place_back()
    assert robot.steps == steps
