"""The rollout loop on fake hardware (the simulated UR5e): arming, envelope, faults, aborts."""

from __future__ import annotations

import inspect
import math

import dashboard_client
import numpy as np
import pytest
import rtde_control
import rtde_io
import rtde_receive

from robomd_diagnoser.catalog import parse_catalog
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
from robomd_ur5e.hardware import (
    CONTROL_METHODS,
    DASHBOARD_METHODS,
    IO_METHODS,
    RECEIVE_METHODS,
    ArmingChecks,
    RobotFault,
    fault_reason,
)
from robomd_ur5e.runner import DISARMED, SPEED_HOLD_PERIODS, ExecutorSettings, RolloutRunner
from robomd_ur5e.safety import ActionMapper, SafetyEnvelope, SafetyLimits

#: config/ur5e/fake_hardware.yaml's envelope.
LIMITS = SafetyLimits(workspace_min=(-0.3, -0.4, -0.115), workspace_max=(0.65, 0.4, 0.4),
                      max_speed=1.0, max_accel=20.0, max_rot_speed=10.0, max_rot_accel=200.0)


@pytest.fixture(scope="module")
def robot() -> FakeRobot:
    robot = make_fake_robot("lift", 48)
    yield robot
    robot.world.close()


class Constant:
    """A policy that always outputs ``action`` (and counts its calls)."""

    def __init__(self, action) -> None:
        self.action, self.calls = action, 0

    def reset(self) -> None:
        self.calls = 0

    def act(self, obs):
        assert obs["image"].shape == (32, 32, 3) and obs["eef_pos"].shape == (3,)
        self.calls += 1
        return self.action(self.calls) if callable(self.action) else self.action


def _runner(robot: FakeRobot, policy, clock=None, sleep=None, **settings) -> RolloutRunner:
    robot.clear_faults()
    robot.reset(0)
    robot.speed_slider, robot.robot_mode, robot.remote_control = 1.0, "RUNNING", True
    home = tuple(robot.joint_positions())
    timing = {"clock": clock} if clock is not None else {}
    runner = RolloutRunner(
        FakeRTDEControl(robot), FakeRTDEReceive(robot), FakeDashboard(robot), FakeGripper(robot),
        policy, SafetyEnvelope(LIMITS), ActionMapper(0.05, 0.5, robot.period),
        lambda: (robot.render(48), 0.0),
        ExecutorSettings(rate=1 / robot.period, home_q=home, image_size=32,
                         **settings), sleep=sleep or (lambda _s: None), **timing)
    return runner


def test_every_ur_rtde_method_the_executor_calls_exists_on_the_installed_classes() -> None:
    for cls, names, fake in ((rtde_control.RTDEControlInterface, CONTROL_METHODS,
                              FakeRTDEControl),
                             (rtde_receive.RTDEReceiveInterface, RECEIVE_METHODS, FakeRTDEReceive),
                             (dashboard_client.DashboardClient, DASHBOARD_METHODS, FakeDashboard),
                             (rtde_io.RTDEIOInterface, IO_METHODS, None)):
        missing = [n for n in names if not callable(getattr(cls, n, None))]
        assert not missing, f"{cls.__name__} lacks {missing}"
        if fake is not None:  # the fake implements exactly what the executor may call
            public = {n for n, _ in inspect.getmembers(fake, inspect.isfunction)
                      if not n.startswith("_")}
            assert public == set(names)


def test_nothing_moves_before_the_executor_is_armed(robot: FakeRobot) -> None:
    policy = Constant(np.array([1.0, 0, -1.0, 0, 0, 0, 1.0]))
    runner = _runner(robot, policy)
    before, steps = robot.tcp_pose(), robot.steps
    result = runner.run(20)
    assert result.status == RolloutStatus.ABORTED and result.reason == DISARMED
    with pytest.raises(RuntimeError, match="disarmed"):
        runner.home()
    assert robot.steps == steps and policy.calls == 0
    np.testing.assert_allclose(robot.tcp_pose(), before)


def test_armed_rollout_moves_the_arm_within_the_envelope(robot: FakeRobot) -> None:
    runner = _runner(robot, Constant(np.array([3.0, 0, -1.0, 0, 0, 0, -1.0])))
    runner.arm()
    start = robot.tcp_pose()
    robot.twists.clear()
    steps = []
    result = runner.run(30, on_step=lambda s, _t: steps.append(s))
    assert result.status == RolloutStatus.COMPLETED and result.steps == 30
    assert steps == list(range(1, 31)) and "clipped" in result.notes[0]
    twists = np.array(robot.twists)
    assert np.max(np.linalg.norm(twists[:, :3], axis=1)) <= LIMITS.max_speed + 1e-9
    assert np.max(np.linalg.norm(np.diff(twists[:, :3], axis=0), axis=1)) <= \
        LIMITS.max_accel * robot.period + 1e-9
    end = robot.tcp_pose()
    assert end[0] > start[0] + 0.05, "the arm moved along +x"
    assert end[2] >= LIMITS.workspace_min[2] - 0.01, "the box floor held"
    assert result.end.lowest_tcp_z <= result.start.tcp_pose[2]


def test_the_expert_lifts_the_cube_through_the_executor(robot: FakeRobot) -> None:
    runner = _runner(robot, expert_policy())
    runner.uses_image = True
    runner.arm()
    result = runner.run(80)
    assert result.status == RolloutStatus.COMPLETED
    assert robot.world.spec.success(robot.world)
    assert result.end.gripper.object_detected
    assert result.end.tcp_pose[2] - result.end.lowest_tcp_z > 0.1


def test_a_nan_action_stops_the_arm_and_aborts(robot: FakeRobot) -> None:
    runner = _runner(robot, Constant(lambda n: np.r_[0.0, 0, math.nan if n == 5 else 0.3,
                                                     0, 0, 0, 0]))
    runner.arm()
    steps = robot.steps
    result = runner.run(30)
    assert result.status == RolloutStatus.ABORTED and "non-finite" in result.reason
    assert result.steps == 4 and robot.steps == steps + 4


@pytest.mark.parametrize("fault, reason", [
    ("protective_stop", "protective stop"),
    ("emergency_stop", "emergency stop"),
    ("disconnect", "lost connection"),
    ("program_stopped", "control program is not running"),
])
def test_robot_faults_abort_the_rollout_with_the_reason(robot: FakeRobot, fault: str,
                                                        reason: str) -> None:
    runner = _runner(robot, Constant(np.array([0.0, 0, 0.2, 0, 0, 0, 0])))
    runner.arm()
    steps, kicks, stops, refused = robot.steps, robot.kicks, robot.speed_stops, robot.refused
    robot.inject(fault, after_steps=6)
    result = runner.run(30)
    assert result.status == RolloutStatus.ABORTED and reason in result.reason
    assert result.steps == 6 and robot.steps == steps + 6
    assert robot.refused == refused, "a motion command was sent after the fault"
    assert robot.speed_stops == stops + 1, "every exit from the loop sends speedStop"
    assert robot.kicks - kicks >= 6, "the watchdog is kicked every step"
    assert reason in fault_reason(runner.control, runner.receive)
    assert not runner.armed and "arm again" in result.reason, "a robot fault disarms"
    next_run = runner.run(5)
    assert next_run.status == RolloutStatus.ABORTED and next_run.steps == 0
    assert next_run.reason == DISARMED and robot.refused == refused
    robot.clear_faults()  # the operator clears the stop on the pendant: still disarmed
    assert runner.run(5).reason == DISARMED and robot.steps == steps + 6
    runner.arm()
    assert runner.run(3).status == RolloutStatus.COMPLETED


def test_disarming_mid_rollout_stops_it(robot: FakeRobot) -> None:
    runner = None

    def act(n: int):
        if n == 3:
            runner.disarm()
        return np.zeros(7)

    runner = _runner(robot, Constant(act))
    runner.arm()
    result = runner.run(30)
    assert result.status == RolloutStatus.ABORTED and result.reason == "disarmed by the operator"
    assert result.steps == 3


def test_cancel_stale_camera_and_policy_errors(robot: FakeRobot) -> None:
    runner = _runner(robot, Constant(np.zeros(7)))
    runner.arm()
    cancelled = runner.run(30, should_cancel=lambda: True)
    assert cancelled.status == RolloutStatus.CANCELLED and cancelled.steps == 0

    runner.frames = lambda: (robot.render(48), 5.0)
    stale = runner.run(30)
    assert stale.status == RolloutStatus.ABORTED and "5.0 s old" in stale.reason

    runner.frames = lambda: (robot.render(48), 0.0)
    runner.policy = Constant(lambda n: 1 / 0)
    crashed = runner.run(30)
    assert crashed.status == RolloutStatus.ABORTED
    assert "the policy raised ZeroDivisionError" in crashed.reason


def test_timeout_aborts(robot: FakeRobot) -> None:
    runner = _runner(robot, Constant(np.zeros(7)))
    runner.arm()
    result = runner.run(10_000, timeout_s=0.3)
    assert result.status == RolloutStatus.ABORTED and result.reason.startswith("timeout after")


def test_homing_returns_to_the_home_pose(robot: FakeRobot) -> None:
    runner = _runner(robot, Constant(np.array([1.0, 0, 0, 0, 0, 0, 0])))
    runner.arm()
    runner.run(20)
    assert runner.joint_error() > runner.settings.home_tolerance
    assert runner.home().startswith("homed")
    assert runner.joint_error() <= runner.settings.home_tolerance
    robot.inject("protective_stop")
    with pytest.raises(RuntimeError, match="cannot home: protective stop"):
        runner.home()


def test_every_speedl_holds_its_twist_briefly_with_a_nonzero_acceleration(
        robot: FakeRobot) -> None:
    runner = _runner(robot, Constant(np.array([0.5, 0, 0, 0, 0, 0, 0])))
    runner.arm()
    robot.speedl_args.clear()
    assert runner.run(10).status == RolloutStatus.COMPLETED
    assert len(robot.speedl_args) == 10
    for acceleration, hold in robot.speedl_args:
        assert acceleration == LIMITS.max_accel > 0
        assert 0 < hold == pytest.approx(SPEED_HOLD_PERIODS * robot.period)


def test_a_stalled_loop_skips_missed_ticks_instead_of_bursting(robot: FakeRobot) -> None:
    now = [0.0]
    sleeps: list[float] = []

    def act(n: int):
        if n == 5:
            now[0] += 10.5 * robot.period  # the policy (or the process) stalls
        return np.zeros(7)

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    runner = _runner(robot, Constant(act), clock=lambda: now[0], sleep=sleep)
    runner.arm()
    result = runner.run(15)
    assert result.status == RolloutStatus.COMPLETED and result.steps == 15
    after_stall = sleeps[5:]
    assert sum(s < robot.period / 2 for s in after_stall) <= 1, \
        f"commands were sent back to back after the stall: sleeps {after_stall}"
    assert any("skipped" in note for note in result.notes)
    assert result.notes[-1] == "9 control ticks skipped in all"  # 10.5 periods late: 9 ticks


@pytest.mark.parametrize("setup, refusal", [
    (lambda r: setattr(r, "speed_slider", 0.3), "speed scaling 0.30"),
    (lambda r: setattr(r, "robot_mode", "IDLE"), "robot mode IDLE"),
    (lambda r: setattr(r, "remote_control", False), "local control"),
    (lambda r: setattr(r, "loaded_program", ""), "No program loaded"),
    (lambda r: r.inject("protective_stop"), "protective stop"),
])
def test_arming_is_refused_unless_the_robot_is_fit_for_a_campaign(robot: FakeRobot, setup,
                                                                  refusal: str) -> None:
    runner = _runner(robot, Constant(np.zeros(7)),
                     arming=ArmingChecks(expected_program="<unnamed>"))
    setup(robot)
    with pytest.raises(RobotFault, match=f"arming refused: .*{refusal}"):
        runner.arm()
    assert not runner.armed and runner.run(3).reason == DISARMED


def test_a_lower_minimum_speed_scaling_allows_a_supervised_run(robot: FakeRobot) -> None:
    runner = _runner(robot, Constant(np.zeros(7)), arming=ArmingChecks(min_speed_scaling=0.25))
    robot.speed_slider = 0.3
    assert runner.arm().startswith("ARMED") and runner.armed
    with pytest.raises(ValueError, match="min_speed_scaling=0"):
        ArmingChecks(min_speed_scaling=0.0)


def test_a_stop_while_idle_disarms(robot: FakeRobot) -> None:
    runner = _runner(robot, Constant(np.zeros(7)))
    runner.arm()
    kicks = robot.kicks
    runner.keepalive()
    assert runner.armed and robot.kicks == kicks + 1
    robot.inject("emergency_stop")
    runner.keepalive()
    assert not runner.armed and runner.disarmed_because == "emergency stop"


DIGITAL = parse_catalog({"task": "lift", "world": "real", "families": [
    {"name": "image_brightness", "factor": "image_brightness", "values": [0.3]},
    {"name": "action_noise", "factor": "action_noise", "values": [1.0]}]}, "digital")


def test_digital_levels_reach_the_policy_and_the_envelope_still_limits(robot: FakeRobot) -> None:
    seen: list[np.ndarray] = []
    policy = Constant(lambda n: np.zeros(7))
    act = policy.act
    policy.act = lambda obs: seen.append(obs["image"].copy()) or act(obs)
    runner = _runner(robot, policy)
    runner.arm()

    def rollout(seed: int) -> tuple[np.ndarray, np.ndarray]:
        robot.reset(0)
        seen.clear()
        robot.twists.clear()
        assert runner.run(5, seed=seed).status == RolloutStatus.COMPLETED
        return seen[0].astype(int), np.array(robot.twists)

    nominal, still = rollout(1)
    assert not still.any(), "the zero policy holds still"
    runner.digital.set([DIGITAL["image_brightness_0p3"]])
    brighter, _ = rollout(1)
    room = nominal <= 255 - 77  # +0.3 of full scale: +76.5, rounded; brighter ones saturate
    assert room.mean() > 0.2 and np.isin(brighter[room] - nominal[room], (76, 77)).all()
    assert (brighter[~room] == 255).all()
    runner.digital.set([DIGITAL["action_noise_1"]])
    image, noisy = rollout(1)
    assert np.array_equal(image, nominal), "the set replaced the image level"
    assert np.abs(noisy).max() > 0, "action noise moved the arm"
    assert np.linalg.norm(noisy[:, :3], axis=1).max() <= LIMITS.max_speed + 1e-9
    assert np.array_equal(rollout(1)[1], noisy), "the rollout's seed fixes the noise"
    assert not np.array_equal(rollout(2)[1], noisy)
    runner.digital.clear()
    image, still = rollout(1)
    assert np.array_equal(image, nominal) and not still.any(), "nothing left after clearing"
