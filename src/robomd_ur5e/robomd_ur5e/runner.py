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
from robomd_ur5e.hardware import (
    ArmingChecks,
    Gripper,
    GripperState,
    RobotFault,
    arming_refusal,
    fault_reason,
)
from robomd_ur5e.safety import ActionMapper, SafetyEnvelope, SafetyStop

#: Returns the latest camera frame (HxWx3 uint8 RGB) and its age in seconds, or None.
FrameSource = Callable[[], tuple[np.ndarray, float] | None]
DISARMED = ("the executor is disarmed: arm it from the operator console (robomd operator --arm) "
            "or call the executor/arm service (std_srvs/SetBool, data: true)")
#: Each ``speedL`` holds its twist this many control periods, then the controller decelerates.
SPEED_HOLD_PERIODS = 2.0


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
        if on_start is not None:
            on_start(first)
        self.policy.reset()
        self.digital.reseed(seed)
        period = 1.0 / self.settings.rate
        hold = SPEED_HOLD_PERIODS * period
        skipped = 0
        previous = np.zeros(6)
        lowest = first.tcp_pose[2]
        steps, notes = 0, []
        status, reason = RolloutStatus.COMPLETED, f"step limit {max_steps} reached"
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
                lowest = min(lowest, float(tcp[2]))
                action = self.digital.perturb_action(self.policy.act(self._observation(tcp)))
                mapped = self.mapper.map(action)
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
            status, reason = RolloutStatus.ABORTED, f"the policy raised {type(exc).__name__}: {exc}"
        finally:
            self.stop()
        if skipped:
            notes.append(f"{skipped} control ticks skipped in all")
        end = None
        try:
            end = self.snapshot(lowest)
        except (RobotFault, RuntimeError) as exc:
            if status == RolloutStatus.COMPLETED:
                status, reason = RolloutStatus.ABORTED, f"cannot read the final state: {exc}"
        return RunResult(status, steps, self.clock() - start, reason, first, end, notes)

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
