"""Running the policy under test on the arm: arming, homing and the rollout loop (no ROS here).

Control: ``speedL`` at the control rate with the RTDE watchdog. The policy's action is a delta per
control period, which maps directly to a TCP twist; the safety envelope limits exactly what is
commanded (speed, acceleration, braking distance to the workspace box) instead of a pose target
that the controller's servo gains would track with their own overshoot; and a stalled loop cannot
leave the arm moving: every ``speedL`` holds its twist for :data:`SPEED_HOLD_PERIODS` control
periods only (then the controller decelerates at the envelope's acceleration), the watchdog
(``setWatchdog``, kicked every step and while idle) stops the controller's program when the loop
stops kicking, and every exit from the loop sends ``speedStop``. A loop that falls behind (a slow
policy step, a stalled process) skips the ticks it missed instead of sending them back to back.

Digital perturbations (:attr:`RolloutRunner.digital`) sit between the camera and the policy (each
frame is corrupted once resized to the policy's image size) and between the policy and the
envelope (action noise, which the envelope then limits like any action); their noise is seeded by
the rollout's seed.

The automatic reset (:meth:`RolloutRunner.place_back`, :class:`PlaceBack`) puts an object the
last rollout left in the gripper back where it was grasped, through the same loop and envelope as
the policy's actions, homes, and checks the camera frame against a reference.

Nothing moves unless :attr:`RolloutRunner.armed`; disarming stops the arm within one period.
Arming is refused unless the robot is fit for a campaign (:func:`~robomd_ur5e.hardware.
arming_refusal`: no fault, full speed scaling, robot mode RUNNING, remote control, the expected
program). A fault of the robot itself (protective or emergency stop, a safety mode other than
normal or reduced, lost connection, stopped program), seen during a rollout, homing or while idle,
disarms the executor: after the operator clears it on the pendant, someone must arm again.
Every fault (those, a joint at its limit, a non-finite action, no camera frame, a stale gripper
reading, a policy exception, the timeout) stops the arm and ends the rollout ABORTED with the
reason; it is never counted as a policy failure.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robomd_diagnoser.digital import DigitalPipeline
from robomd_diagnoser.policy import RolloutPolicy
from robomd_diagnoser.world import RolloutStatus, StepCallback
from robomd_ur5e.detector import StateRule, VisionRule
from robomd_ur5e.hardware import (
    ArmingChecks,
    Gripper,
    GripperState,
    RobotFault,
    arming_refusal,
    fault_reason,
)
from robomd_ur5e.safety import ActionMapper, MappedAction, SafetyEnvelope, SafetyStop

#: Returns the latest camera frame (HxWx3 uint8 RGB) and its age in seconds, or None.
FrameSource = Callable[[], tuple[np.ndarray, float] | None]
DISARMED = ("the executor is disarmed: arm it from the operator console (robomd operator --arm) "
            "or call the executor/arm service (std_srvs/SetBool, data: true)")
#: Each ``speedL`` holds its twist this many control periods, then the controller decelerates.
SPEED_HOLD_PERIODS = 2.0
#: One control step of a drive: the TCP pose -> the command, or None when the drive is done.
Command = Callable[[Sequence[float]], MappedAction | None]


@dataclass(frozen=True)
class PlaceBack:
    """How the executor puts the held object back where it was grasped (automatic reset).

    The place pose is the TCP position at the lowest point of the last rollout (where the gripper
    closed on the object resting on the table) raised by ``clearance``: the object is released
    where it was taken, whatever its height and the TCP's offset from the fingertips.

    :param hover: height above the place pose of the approach and the retreat, m.
    :param clearance: the TCP stops this far above its grasp height before releasing, m.
    :param speed: TCP speed asked for (the envelope's limits still apply), m/s.
    :param tolerance: distance to a waypoint that counts as reached, m.
    :param release_time: seconds the gripper gets to open.
    :param settle_time: seconds after homing before the check frame is taken.
    :param check_px: largest distance, pixels, between the object's blob after the reset and in
        the reference frame (the start of the first rollout after the operator's last reset).
    :param hold: decides whether the gripper holds the object (the success detector's state rule).
    :param vision: finds the object in a camera frame (the success detector's vision rule).
    """

    hover: float = 0.10
    clearance: float = 0.01
    speed: float = 0.1
    tolerance: float = 0.005
    release_time: float = 0.5
    settle_time: float = 0.5
    check_px: float = 20.0
    hold: StateRule = field(default_factory=StateRule)
    vision: VisionRule = field(default_factory=VisionRule)

    def __post_init__(self) -> None:
        for name in ("hover", "speed", "tolerance", "check_px"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"place_{name}={value!r}: a positive number")
        for name in ("clearance", "release_time", "settle_time"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"place_{name}={value!r}: a number >= 0")


@dataclass(frozen=True)
class ExecutorSettings:
    """How the executor drives the arm.

    :param rate: control rate, Hz (the policy's control frequency).
    :param home_q: home joint positions (6), rad; the arm returns there between rollouts.
    :param home_speed: joint speed of the homing move, rad/s.
    :param home_accel: joint acceleration of the homing move, rad/s^2.
    :param home_tolerance: largest joint error (rad) that counts as "at home".
    :param home_timeout: seconds the homing move may take.
    :param watchdog_hz: minimum kick frequency of the RTDE watchdog (0: no watchdog).
    :param frame_timeout: a camera frame older than this (s) aborts the rollout.
    :param image_size: resize camera frames to this square size for the policy (0: as received).
    :param stop_decel: TCP deceleration of ``speedStop``, m/s^2.
    :param arming: what must hold before the executor may be armed.
    :param place: the automatic reset's place-back and scene check.
    """

    rate: float = 20.0
    home_q: tuple[float, ...] = (0.0, -1.571, 1.571, -1.571, -1.571, 0.0)
    home_speed: float = 0.5
    home_accel: float = 0.5
    home_tolerance: float = 0.01
    home_timeout: float = 30.0
    watchdog_hz: float = 10.0
    frame_timeout: float = 1.0
    image_size: int = 0
    stop_decel: float = 2.0
    arming: ArmingChecks = field(default_factory=ArmingChecks)
    place: PlaceBack = field(default_factory=PlaceBack)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError(f"rate={self.rate!r}: a positive control rate in Hz")
        if len(self.home_q) != 6 or not all(math.isfinite(v) for v in self.home_q):
            raise ValueError(f"home_q={list(self.home_q)!r}: six finite joint positions in rad")
        if self.image_size < 0:
            raise ValueError(f"image_size={self.image_size}: 0 (as received) or a size in pixels")


@dataclass(frozen=True)
class Snapshot:
    """The robot at a rollout boundary (what the success detector needs)."""

    tcp_pose: tuple[float, ...]
    joint_positions: tuple[float, ...]
    lowest_tcp_z: float
    gripper: GripperState


@dataclass(frozen=True)
class RunResult:
    """How a rollout on the arm ended."""

    status: RolloutStatus
    steps: int
    duration: float
    reason: str
    start: Snapshot | None = None
    end: Snapshot | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Drive:
    """How a drive (:meth:`RolloutRunner._drive`) ended."""

    status: RolloutStatus
    reason: str
    steps: int
    finished: bool  # the command said it was done
    lowest: tuple[float, float, float]  # TCP position at the lowest point
    notes: list[str]


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    if size <= 0 or image.shape[:2] == (size, size):
        return image
    import cv2

    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)


class RolloutRunner:
    """Drives one arm: arming, homing, rollouts. Call every method from one thread.

    :param control: ``RTDEControlInterface`` (or fake).
    :param receive: ``RTDEReceiveInterface`` (or fake).
    :param dashboard: ``dashboard_client.DashboardClient`` (or fake), read when arming.
    :param gripper: the gripper.
    :param policy: the policy under test.
    :param envelope: the safety envelope.
    :param mapper: action -> twist mapping.
    :param frames: the latest camera frame and its age.
    :param settings: executor settings.
    :param clock: monotonic clock (seconds).
    :param sleep: sleep function.

    :attr:`digital` holds the digital perturbations in effect for the coming rollouts (nominal
    until set).
    """

    def __init__(self, control: Any, receive: Any, dashboard: Any, gripper: Gripper,
                 policy: RolloutPolicy,
                 envelope: SafetyEnvelope, mapper: ActionMapper, frames: FrameSource,
                 settings: ExecutorSettings, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.control, self.receive, self.dashboard = control, receive, dashboard
        self.gripper = gripper
        self.policy, self.envelope, self.mapper = policy, envelope, mapper
        self.frames, self.settings = frames, settings
        self.clock, self.sleep = clock, sleep
        self.uses_image = bool(getattr(policy, "uses_image", True))
        self.digital = DigitalPipeline()
        self._armed = threading.Event()
        self.disarmed_because = "not armed yet"
        self._gripper_closed: bool | None = None
        self._grasp: tuple[float, float, float] | None = None  # last rollout's lowest TCP point
        self._reference: np.ndarray | None = None  # the place-back check's reference frame
        if settings.watchdog_hz > 0:
            control.setWatchdog(settings.watchdog_hz)

    # ------------------------------------------------------------------ arming
    @property
    def armed(self) -> bool:
        """True when the operator allowed motion."""
        return self._armed.is_set()

    def arm(self) -> str:
        """Allow motion if the robot is fit for it (reads the robot: call from the robot's thread).

        :return: what was done.
        :raises RobotFault: why arming was refused (:func:`~robomd_ur5e.hardware.arming_refusal`).
        """
        reason = arming_refusal(self.control, self.receive, self.dashboard, self.settings.arming)
        if reason:
            raise RobotFault(f"arming refused: {reason}")
        self._armed.set()
        return "ARMED: the arm moves on the next homing or rollout"

    def disarm(self, because: str = "disarmed by the operator") -> None:
        """Forbid motion (safe from any thread); a running rollout or homing stops within one
        control period."""
        if self._armed.is_set():
            self.disarmed_because = because
        self._armed.clear()

    def _robot_fault(self) -> str | None:
        """Poll the robot; on a fault, disarm (a new arm is needed once it is cleared)."""
        reason = fault_reason(self.control, self.receive)
        if reason:
            self.disarm(reason)
            reason += "; the executor is disarmed: clear it on the pendant, then arm again"
        return reason

    def _kick(self) -> None:
        if self.settings.watchdog_hz > 0:
            self.control.kickWatchdog()

    def keepalive(self) -> None:
        """While idle (call at twice ``watchdog_hz`` or more): kick the RTDE watchdog and poll
        the robot, so a stop between rollouts disarms the executor too."""
        self._kick()
        self._robot_fault()

    def stop(self) -> None:
        """Decelerate the arm to rest; never raises (a lost connection stops the arm anyway)."""
        try:
            self.control.speedStop(self.settings.stop_decel)
        except RuntimeError:
            pass

    # ------------------------------------------------------------------ state
    def _gripper_state(self) -> GripperState:
        try:
            return self.gripper.state()
        except RobotFault as exc:
            raise RobotFault(f"gripper: {exc}") from None

    def snapshot(self, lowest_z: float | None = None) -> Snapshot:
        """Read the robot's state now."""
        tcp = tuple(float(v) for v in self.receive.getActualTCPPose())
        q = tuple(float(v) for v in self.receive.getActualQ())
        return Snapshot(tcp, q, tcp[2] if lowest_z is None else min(lowest_z, tcp[2]),
                        self._gripper_state())

    def joint_error(self) -> float:
        """Largest joint distance (rad) from the home pose."""
        q = np.asarray(self.receive.getActualQ(), dtype=float)
        return float(np.max(np.abs(q - np.asarray(self.settings.home_q))))

    def _set_gripper(self, closed: bool) -> None:
        if closed != self._gripper_closed:
            self.gripper.set_closed(closed)
            self._gripper_closed = closed

    # ------------------------------------------------------------------ homing
    def home(self) -> str:
        """Move to the home pose (joint space) and open the gripper.

        :return: what was done.
        :raises RobotFault: disarmed, a robot fault, disarmed during the move, or timeout.
        """
        if not self.armed:
            raise RobotFault(DISARMED)
        reason = self._robot_fault()
        if reason:
            raise RobotFault(f"cannot home: {reason}")
        self._set_gripper(False)
        if self.joint_error() <= self.settings.home_tolerance:
            return "already at home"
        s = self.settings
        if not self.control.moveJ(list(s.home_q), s.home_speed, s.home_accel, True):
            raise RobotFault("the controller refused the homing move (moveJ)")
        start = self.clock()
        period = 1.0 / max(2.0 * s.watchdog_hz, 20.0)
        while True:
            reason = None if self.armed else "disarmed during homing"
            reason = reason or self._robot_fault()
            if reason is None and self.clock() - start > s.home_timeout:
                reason = f"homing took longer than {s.home_timeout:.0f} s"
            if reason:
                try:
                    self.control.stopJ(s.home_accel * 2, False)
                except RuntimeError:
                    pass
                raise RobotFault(reason)
            self._kick()
            qd = np.asarray(self.receive.getActualQd(), dtype=float)
            if self.joint_error() <= s.home_tolerance and np.max(np.abs(qd)) < 1e-3:
                return f"homed in {self.clock() - start:.1f} s"
            self.sleep(period)

    # ------------------------------------------------------------------ rollout
    def run(self, max_steps: int, timeout_s: float = 0.0, on_step: StepCallback | None = None,
            should_cancel: Callable[[], bool] | None = None,
            on_start: Callable[[Snapshot], None] | None = None, seed: int = 0) -> RunResult:
        """Run the policy once from the current pose for up to ``max_steps`` control steps.

        :param max_steps: step limit (the rollout then COMPLETES and is judged).
        :param timeout_s: wall-clock limit (0: none); exceeded -> ABORTED.
        :param on_step: called after each step with (step, elapsed seconds).
        :param should_cancel: polled every step; True -> CANCELLED.
        :param on_start: called with the start snapshot before the first step.
        :param seed: the rollout's seed (the digital perturbations' noise).
        """
        start = self.clock()
        if not self.armed:
            return RunResult(RolloutStatus.ABORTED, 0, 0.0, DISARMED)
        reason = self._robot_fault()
        if reason:
            return RunResult(RolloutStatus.ABORTED, 0, 0.0, reason)
        try:
            first = self.snapshot()
        except (RobotFault, RuntimeError) as exc:  # RuntimeError: ur_rtde's socket is gone
            return RunResult(RolloutStatus.ABORTED, 0, 0.0, f"cannot read the robot: {exc}")
        if self._reference is None:
            frame = self.frames()
            self._reference = None if frame is None else frame[0]
        if on_start is not None:
            on_start(first)
        self.policy.reset()
        self.digital.reseed(seed)

        def act(tcp: Sequence[float]) -> MappedAction:
            return self.mapper.map(self.digital.perturb_action(
                self.policy.act(self._observation(tcp))))

        drive = self._drive(act, first.tcp_pose, max_steps, timeout_s, on_step, should_cancel,
                            "the policy")
        self._grasp = drive.lowest
        status, reason = drive.status, drive.reason
        if status == RolloutStatus.COMPLETED:
            reason = f"step limit {max_steps} reached"
        end = None
        try:
            end = self.snapshot(drive.lowest[2])
        except (RobotFault, RuntimeError) as exc:
            if status == RolloutStatus.COMPLETED:
                status, reason = RolloutStatus.ABORTED, f"cannot read the final state: {exc}"
        return RunResult(status, drive.steps, self.clock() - start, reason, first, end,
                         drive.notes)

    def _drive(self, command: Command, start_tcp: Sequence[float], max_steps: int,
               timeout_s: float = 0.0,
               on_step: StepCallback | None = None,
               should_cancel: Callable[[], bool] | None = None,
               who: str = "the policy") -> _Drive:
        """The control loop every motion but homing goes through: each step checks the stop
        conditions and the joints, asks ``command`` for a twist, limits it with the safety
        envelope and sends it with ``speedL``; every exit sends ``speedStop``.

        :param command: the TCP pose -> the step's command, or None when done.
        :param start_tcp: the TCP pose before the first step.
        :param who: names the command in the reason when it raises.
        """
        start = self.clock()
        period = 1.0 / self.settings.rate
        hold = SPEED_HOLD_PERIODS * period
        skipped = 0
        previous = np.zeros(6)
        lowest = tuple(float(v) for v in start_tcp[:3])
        steps, notes, finished = 0, [], False
        status, reason = RolloutStatus.COMPLETED, ""
        next_tick = self.clock()
        try:
            while steps < max_steps:
                elapsed = self.clock() - start
                stop = self._stop_reason(elapsed, timeout_s, should_cancel)
                if stop:
                    status, reason = stop
                    break
                tcp = self.receive.getActualTCPPose()
                self.envelope.check_joints(self.receive.getActualQ(), self.receive.getActualQd())
                if float(tcp[2]) < lowest[2]:
                    lowest = tuple(float(v) for v in tcp[:3])
                mapped = command(tcp)
                if mapped is None:
                    finished = True
                    break
                twist = self.envelope.limit(tcp, mapped.twist, previous, period)
                if mapped.clipped and not notes:
                    notes.append(f"action clipped to [-1, 1] at step {steps + 1}")
                if not self.control.speedL(twist.tolist(), self.envelope.limits.max_accel, hold):
                    status = RolloutStatus.ABORTED
                    reason = self._robot_fault() or "speedL was refused"
                    break
                previous = twist
                self._set_gripper(mapped.close_gripper)
                self._kick()
                steps += 1
                if on_step is not None:
                    on_step(steps, self.clock() - start)
                next_tick += period
                now = self.clock()
                if now > next_tick:  # behind: skip the missed ticks, never burst to catch up
                    missed = int((now - next_tick) / period)
                    if missed and not skipped:
                        notes.append(f"control loop stalled at step {steps}: skipped ticks")
                    skipped += missed
                    next_tick = now
                self.sleep(max(0.0, next_tick - now))
        except SafetyStop as exc:
            status, reason = RolloutStatus.ABORTED, f"safety stop: {exc}"
        except RobotFault as exc:
            status, reason = RolloutStatus.ABORTED, str(exc)
        except RuntimeError as exc:  # ur_rtde on a dropped socket
            status = RolloutStatus.ABORTED
            reason = self._robot_fault() or f"robot error: {exc}"
        except Exception as exc:  # the policy under test raised: a fault, not a task failure
            status, reason = RolloutStatus.ABORTED, f"{who} raised {type(exc).__name__}: {exc}"
        finally:
            self.stop()
        if skipped:
            notes.append(f"{skipped} control ticks skipped in all")
        return _Drive(status, reason, steps, finished, lowest, notes)

    def _stop_reason(self, elapsed: float, timeout_s: float,
                     should_cancel: Callable[[], bool] | None) -> tuple[RolloutStatus, str] | None:
        if should_cancel is not None and should_cancel():
            return RolloutStatus.CANCELLED, "cancelled"
        if not self.armed:
            return RolloutStatus.ABORTED, self.disarmed_because
        if timeout_s > 0 and elapsed > timeout_s:
            return RolloutStatus.ABORTED, f"timeout after {timeout_s:.1f} s"
        fault = self._robot_fault()
        return (RolloutStatus.ABORTED, fault) if fault else None

    # ------------------------------------------------------------------ automatic reset
    def scene_touched(self) -> None:
        """A person is about to reset the scene: the next rollout's start frame becomes the
        reference the place-back's check compares with."""
        self._reference = self._grasp = None

    def place_back(self) -> str:
        """Put the object the last rollout left in the gripper back where it was grasped, home,
        and check the scene against the reference frame (see :class:`PlaceBack`).

        Every motion goes through :meth:`_drive` (the safety envelope, the stop conditions, the
        watchdog), then :meth:`home`.

        :return: what was done.
        :raises RobotFault: why the object could not be put back or the check failed (the scene
            then needs a person).
        """
        plan = self.settings.place
        grasp, self._grasp = self._grasp, None
        if not self.armed:
            raise RobotFault(DISARMED)
        reason = self._robot_fault()
        if reason:
            raise RobotFault(f"cannot place back: {reason}")
        if grasp is None:
            raise RobotFault("no rollout ran since the last reset: nothing to place back")
        if self._reference is None:
            raise RobotFault("no reference camera frame to check the scene against")
        state = self._gripper_state()
        held, _conf, how = plan.hold.holding(state.width, state.object_detected)
        if not held:
            raise RobotFault(f"the gripper does not hold the object ({how})")
        place = np.array([grasp[0], grasp[1], grasp[2] + plan.clearance])
        above = place + np.array([0.0, 0.0, plan.hover])
        now = np.asarray(self.receive.getActualTCPPose()[:3], dtype=float)
        lift = np.array([now[0], now[1], max(now[2], above[2])])
        lo = np.asarray(self.envelope.limits.workspace_min)
        hi = np.asarray(self.envelope.limits.workspace_max)
        for name, point in (("the approach height", lift), ("above the place", above),
                            ("the place", place)):
            if np.any(point < lo) or np.any(point > hi):
                raise RobotFault(f"{name} {np.round(point, 3).tolist()} is outside the workspace "
                                 f"box {lo.tolist()}..{hi.tolist()}: raise workspace_max or lower "
                                 "place_hover")
        for target, closed in ((lift, True), (above, True), (place, True)):
            self._move(target, closed)
        self._move(place, False, steps=max(1, math.ceil(plan.release_time * self.settings.rate)))
        self._move(above, False)
        self.home()
        self._wait(plan.settle_time)
        return f"placed back at {np.round(place, 3).tolist()}, homed; {self._check_scene()}"

    def _move(self, target: np.ndarray, closed: bool, steps: int = 0) -> None:
        """Straight to ``target`` (m, base frame) at the place-back speed, orientation held,
        gripper ``closed``; with ``steps``, hold still that many steps instead.

        :raises RobotFault: a stop condition, or the target not reached in time.
        """
        plan, rate = self.settings.place, self.settings.rate
        gain = min(5.0, rate)  # 1/s: the last centimetres slow down, never overshoot

        def toward(tcp: Sequence[float]) -> MappedAction | None:
            error = target - np.asarray(tcp[:3], dtype=float)
            if not steps and np.linalg.norm(error) <= plan.tolerance:
                return None
            velocity = error * gain if not steps else np.zeros(3)
            norm = float(np.linalg.norm(velocity))
            if norm > plan.speed:
                velocity *= plan.speed / norm
            return MappedAction(np.r_[velocity, np.zeros(3)], closed, False)

        tcp = self.receive.getActualTCPPose()
        distance = float(np.linalg.norm(target - np.asarray(tcp[:3], dtype=float)))
        speed = min(plan.speed, self.envelope.limits.max_speed)
        limit = steps or math.ceil((3.0 * distance / speed + 2.0) * rate)
        drive = self._drive(toward, tcp, limit, who="the place-back")
        if drive.status != RolloutStatus.COMPLETED:
            raise RobotFault(f"place-back stopped: {drive.reason}")
        if not steps and not drive.finished:
            raise RobotFault(f"place-back: the TCP did not reach {np.round(target, 3).tolist()} "
                             f"within {limit} control steps")

    def _wait(self, seconds: float) -> None:
        """Stand still for ``seconds``, kicking the watchdog and watching for faults.

        :raises RobotFault: disarmed or a robot fault meanwhile.
        """
        period = 1.0 / self.settings.rate
        end = self.clock() + seconds
        while self.clock() < end:
            stop = self._stop_reason(0.0, 0.0, None)
            if stop:
                raise RobotFault(stop[1])
            self._kick()
            self.sleep(period)

    def _check_scene(self) -> str:
        """Compare the object's blob now with the reference frame's.

        :raises RobotFault: no fresh frame, no object seen, or the object too far from its place.
        """
        plan = self.settings.place
        frame = self.frames()
        if frame is None or frame[1] > max(plan.settle_time, 1.0 / self.settings.rate):
            raise RobotFault("scene check: no fresh camera frame")
        ref, now = plan.vision.blob(self._reference), plan.vision.blob(frame[0])
        if ref is None or now is None:
            where = "reference frame" if ref is None else "camera frame after the reset"
            raise RobotFault(f"scene check: no object of the configured colour in the {where}")
        off = math.hypot(now.cx - ref.cx, now.cy - ref.cy)
        if off > plan.check_px:
            raise RobotFault(f"scene check: the object is {off:.1f} px from its reference place "
                             f"(limit place_check_px {plan.check_px:g})")
        return f"scene check: object {off:.1f} px from its reference place"

    def _observation(self, tcp: Sequence[float]) -> dict[str, np.ndarray]:
        obs = {"eef_pos": np.asarray(tcp[:3], dtype=np.float64),
               "gripper": np.array([self._gripper_state().opening])}
        if self.uses_image:
            frame = self.frames()
            if frame is None:
                raise RobotFault("no camera frame: is the camera node publishing "
                                 "camera/image_raw?")
            image, age = frame
            if age > self.settings.frame_timeout:
                raise RobotFault(f"the latest camera frame is {age:.1f} s old (limit "
                                 f"{self.settings.frame_timeout} s): camera lost")
            obs["image"] = self.digital.corrupt(_resize(image, self.settings.image_size))
        return obs
