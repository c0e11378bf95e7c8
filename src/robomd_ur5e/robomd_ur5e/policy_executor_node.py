"""policy_executor node: serves ``execute_rollout`` on the UR5e (ur_rtde) or on fake hardware.

Services: ``executor/arm`` (std_srvs/SetBool: nothing moves until an operator arms the executor;
``false`` disarms and stops the arm), ``executor/home`` (std_srvs/Trigger: move to ``home_q``; the
operator prompt calls it on every ``reset_scene``). Publishes ``executor/rollout_state``
(robomd_msgs/RolloutState) at the start and end of every rollout, for the success detector, and
``executor/status`` (robomd_msgs/ExecutorStatus, latched: armed, busy, protective and emergency
stop), for the operator's console.
Every call to the robot runs on one dedicated thread (with fake hardware, the simulator's GL
context is bound to it); see :mod:`robomd_ur5e.executor` for the control loop and its faults.

With ``use_fake_hardware``, the robot is :mod:`robomd_ur5e.fake` (the simulated UR5e); the node
then also publishes the simulated scene camera on ``camera/image_raw`` and serves
``fake_hardware/apply_perturbation`` and ``fake_hardware/reset_scene`` (what the operator's
hands do to the simulated scene once a prompt is answered).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
import rclpy
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_srvs.srv import SetBool, Trigger

from robomd_diagnoser.catalog import CatalogError
from robomd_diagnoser.policy import PolicyError, load_policy
from robomd_diagnoser.ros.image import from_msg, to_msg
from robomd_diagnoser.world import RolloutStatus
from robomd_msgs.action import ExecuteRollout
from robomd_msgs.msg import ExecutorStatus, RolloutState
from robomd_msgs.srv import ApplyPerturbation, ResetScene
from robomd_ur5e.executor import ExecutorSettings, RolloutRunner, Snapshot
from robomd_ur5e.fake import FAULTS
from robomd_ur5e.hardware import GRIPPERS, RobotFault, connect_robot, fault_reason, make_gripper
from robomd_ur5e.node_util import LATCHED, ParameterError, declare, spin_node
from robomd_ur5e.safety import ActionMapper, SafetyEnvelope, SafetyLimits

_UR5E_JOINT_LIMIT = 2 * math.pi
#: name -> (default, description); every parameter is read-only once the node runs.
PARAMETERS: dict[str, tuple[object, str]] = {
    "robot_ip": ("", "the UR controller's IP address (required without fake hardware)"),
    "use_fake_hardware": (False, "drive the simulated UR5e instead of a real robot"),
    "policy": ("", "policy under test: torchscript:<path>, module:<pkg.mod:factory>, bc:<path>"),
    "device": ("cpu", "torch device of the policy"),
    "rate": (20.0, "control rate, Hz (the policy's control frequency)"),
    "pos_scale": (0.05, "metres per unit of the action's position delta per control period"),
    "rot_scale": (0.5, "radians per unit of the action's rotation delta per control period"),
    "action_frame_rpy": ([0.0, 0.0, 0.0], "roll, pitch, yaw of the policy's action frame in "
                                          "the robot base frame, rad"),
    "image_size": (0, "resize camera frames to this square size for the policy (0: the "
                      "policy's own image_size if it declares one, else as received)"),
    "frame_timeout": (1.0, "a camera frame older than this aborts the rollout, s"),
    "home_q": ([0.0, -1.571, 1.571, -1.571, -1.571, 0.0], "home joint positions, rad"),
    "home_speed": (0.5, "joint speed of the homing move, rad/s"),
    "home_accel": (0.5, "joint acceleration of the homing move, rad/s^2"),
    "home_tolerance": (0.01, "joint error that counts as at home, rad"),
    "home_timeout": (30.0, "seconds the homing move may take"),
    "watchdog_hz": (10.0, "RTDE watchdog minimum frequency, Hz (0: off)"),
    "workspace_min": ([-0.6, -0.6, 0.02], "lower corner of the TCP workspace box, m, base frame"),
    "workspace_max": ([0.6, 0.6, 0.6], "upper corner of the TCP workspace box, m, base frame"),
    "max_speed": (0.25, "TCP speed limit, m/s"),
    "max_accel": (1.0, "TCP acceleration limit, m/s^2"),
    "max_rot_speed": (1.0, "TCP angular speed limit, rad/s"),
    "max_rot_accel": (4.0, "TCP angular acceleration limit, rad/s^2"),
    "joint_min": ([-_UR5E_JOINT_LIMIT] * 6, "lower joint limits, rad"),
    "joint_max": ([_UR5E_JOINT_LIMIT] * 6, "upper joint limits, rad"),
    "joint_margin": (0.05, "the arm stops this far inside its joint limits, rad"),
    "joint_lookahead": (0.2, "seconds ahead the joint limit check extrapolates"),
    "gripper": ("robotiq", "robotiq (URCap socket, port 63352) or digital (RTDE digital out)"),
    "gripper_pin": (0, "digital gripper: standard digital output 0..7"),
    "gripper_close_level": (True, "digital gripper: output level that closes it"),
    "gripper_max_width": (0.085, "finger gap when open, m (2F-85: 0.085, 2F-140: 0.14)"),
    "frame_id": ("scene_camera", "fake hardware: frame_id of the simulated camera images"),
    "fake_task": ("lift", "fake hardware: the simulated task"),
    "fake_camera_size": (84, "fake hardware: simulated camera size, pixels"),
    "fake_camera_rate": (10.0, "fake hardware: camera publish rate between rollouts, Hz"),
    "fake_faults": ([""], "fake hardware: faults to inject, '<fault>@<control step>' with "
                          f"fault one of {', '.join(FAULTS)} (cleared by reset_scene)"),
}
_RESULT_STATUS = {
    RolloutStatus.COMPLETED: ExecuteRollout.Result.STATUS_COMPLETED,
    RolloutStatus.ABORTED: ExecuteRollout.Result.STATUS_ABORTED,
    RolloutStatus.CANCELLED: ExecuteRollout.Result.STATUS_CANCELLED,
    RolloutStatus.UNAVAILABLE: ExecuteRollout.Result.STATUS_UNAVAILABLE,
}
T = TypeVar("T")


def _floats(p: dict, name: str, n: int) -> tuple[float, ...]:
    values = p[name]
    if len(values) != n:
        raise ParameterError(f"parameter {name}={list(values)!r}: give {n} numbers")
    return tuple(float(v) for v in values)


def limits_from(p: dict) -> SafetyLimits:
    """The safety limits from node parameters.

    :raises ParameterError: naming the parameter.
    """
    try:
        return SafetyLimits(
            workspace_min=_floats(p, "workspace_min", 3),
            workspace_max=_floats(p, "workspace_max", 3),
            max_speed=float(p["max_speed"]), max_accel=float(p["max_accel"]),
            max_rot_speed=float(p["max_rot_speed"]), max_rot_accel=float(p["max_rot_accel"]),
            joint_min=_floats(p, "joint_min", 6), joint_max=_floats(p, "joint_max", 6),
            joint_margin=float(p["joint_margin"]), joint_lookahead=float(p["joint_lookahead"]))
    except ValueError as exc:
        raise ParameterError(f"safety parameters: {exc}") from None


def settings_from(p: dict, image_size: int) -> ExecutorSettings:
    """The executor settings from node parameters.

    :raises ParameterError: naming the parameter.
    """
    try:
        return ExecutorSettings(
            rate=float(p["rate"]), home_q=_floats(p, "home_q", 6),
            home_speed=float(p["home_speed"]), home_accel=float(p["home_accel"]),
            home_tolerance=float(p["home_tolerance"]), home_timeout=float(p["home_timeout"]),
            watchdog_hz=float(p["watchdog_hz"]), frame_timeout=float(p["frame_timeout"]),
            image_size=image_size)
    except ValueError as exc:
        raise ParameterError(f"executor parameters: {exc}") from None


def parse_faults(specs: list[str]) -> list[tuple[str, int]]:
    """``['protective_stop@30']`` -> ``[('protective_stop', 30)]`` (empty strings ignored).

    :raises ParameterError: naming the bad entry.
    """
    faults = []
    for spec in (s for s in specs if s):
        fault, _, step = spec.partition("@")
        if fault not in FAULTS or not step.isdigit():
            raise ParameterError(f"parameter fake_faults entry {spec!r}: use <fault>@<step>, "
                                 f"fault one of {', '.join(FAULTS)}")
        faults.append((fault, int(step)))
    return faults


class PolicyExecutorNode(Node):
    """The arm's rollout server: real ur_rtde interfaces, or the fakes with use_fake_hardware."""

    def __init__(self) -> None:
        super().__init__("policy_executor", namespace="/robomd")
        p = declare(self, PARAMETERS)
        self.fake = bool(p["use_fake_hardware"])
        if p["gripper"] not in GRIPPERS:
            raise ParameterError(f"parameter gripper={p['gripper']!r}: use one of "
                                 f"{', '.join(GRIPPERS)}")
        if not p["policy"]:
            raise ParameterError("parameter policy is required: the policy under test, e.g. "
                                 "torchscript:/path/policy.pt (launch argument policy:=...)")
        if not self.fake and not p["robot_ip"]:
            raise ParameterError("parameter robot_ip is required (or use_fake_hardware: true)")
        self._robot_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="robot")
        self._busy = threading.Lock()
        self._frame: tuple[np.ndarray, float] | None = None
        self.frame_id = str(p["frame_id"])
        group = ReentrantCallbackGroup()
        self.state_pub = self.create_publisher(RolloutState, "executor/rollout_state", 10)
        self.status_pub = self.create_publisher(ExecutorStatus, "executor/status", LATCHED)
        self._status: tuple[bool, bool, str] | None = None
        self._status_time = 0.0
        self.image_pub = None
        if self.fake:
            self._build_fake(p, group)
        else:
            self._build_real(p, group)
        policy = self._on_robot(lambda: load_policy(str(p["policy"]), str(p["device"])))
        image_size = int(p["image_size"]) or int(getattr(policy, "meta", {}).get("image_size", 0))
        self.runner = self._on_robot(lambda: RolloutRunner(
            self.control, self.receive, self.gripper, policy, SafetyEnvelope(limits_from(p)),
            ActionMapper(float(p["pos_scale"]), float(p["rot_scale"]), 1.0 / float(p["rate"]),
                         _floats(p, "action_frame_rpy", 3)),
            self._fake_frame if self.fake else self._latest_frame, settings_from(p, image_size),
            sleep=(lambda _s: None) if self.fake else time.sleep))
        self.create_service(SetBool, "executor/arm", self._arm, callback_group=group)
        self.create_service(Trigger, "executor/home", self._home, callback_group=group)
        self._action = ActionServer(self, ExecuteRollout, "execute_rollout", self._execute,
                                    callback_group=group, goal_callback=self._on_goal,
                                    cancel_callback=lambda _h: CancelResponse.ACCEPT)
        idle = 1.0 / max(2.0 * float(p["watchdog_hz"]), float(p["fake_camera_rate"]), 1.0)
        self.create_timer(idle, self._idle)
        self.get_logger().info(
            f"policy executor ready ({'FAKE hardware' if self.fake else p['robot_ip']}), policy "
            f"{p['policy']}, {p['rate']} Hz; DISARMED until executor/arm is called")

    # ------------------------------------------------------------------ construction
    def _on_robot(self, fn: Callable[[], T]) -> T:
        return self._robot_thread.submit(fn).result()

    def _build_real(self, p: dict, group) -> None:
        ip = str(p["robot_ip"])
        try:
            self.control, self.receive = connect_robot(ip)
            self.gripper = make_gripper(str(p["gripper"]), ip, pin=int(p["gripper_pin"]),
                                        close_level=bool(p["gripper_close_level"]),
                                        max_width=float(p["gripper_max_width"]))
        except RobotFault as exc:
            raise ParameterError(str(exc)) from None
        self.create_subscription(Image, "camera/image_raw", self._on_image,
                                 qos_profile_sensor_data, callback_group=group)

    def _build_fake(self, p: dict, group) -> None:
        from robomd_ur5e.fake import FakeGripper, FakeRTDEControl, FakeRTDEReceive, make_fake_robot

        faults = parse_faults(list(p["fake_faults"]))
        self.camera_size = int(p["fake_camera_size"])
        self.robot = self._on_robot(lambda: make_fake_robot(str(p["fake_task"]), self.camera_size))
        if abs(float(p["rate"]) - 1.0 / self.robot.period) > 1e-6:
            raise ParameterError(f"parameter rate={p['rate']}: fake hardware steps the simulator "
                                 f"at its control rate, {1.0 / self.robot.period:.0f} Hz")
        for fault, step in faults:
            self.robot.inject(fault, step)
        self.control, self.receive = FakeRTDEControl(self.robot), FakeRTDEReceive(self.robot)
        self.gripper = FakeGripper(self.robot)
        self.image_pub = self.create_publisher(Image, "camera/image_raw", qos_profile_sensor_data)
        self.create_service(ApplyPerturbation, "fake_hardware/apply_perturbation",
                            self._fake_apply, callback_group=group)
        self.create_service(ResetScene, "fake_hardware/reset_scene", self._fake_reset,
                            callback_group=group)

    # ------------------------------------------------------------------ camera
    def _on_image(self, msg: Image) -> None:
        self._frame = (from_msg(msg), time.monotonic())

    def _latest_frame(self) -> tuple[np.ndarray, float] | None:
        frame = self._frame
        return None if frame is None else (frame[0], time.monotonic() - frame[1])

    def _fake_frame(self) -> tuple[np.ndarray, float]:
        image = self.robot.render(self.camera_size)
        self.image_pub.publish(to_msg(image, self.frame_id, self.get_clock().now().to_msg()))
        return image, 0.0

    def _idle(self) -> None:
        """Between rollouts: kick the watchdog; with fake hardware, publish the camera.

        Queued behind nothing long: a rollout or homing keeps the robot thread (and kicks the
        watchdog itself), so the idle tick skips while one runs.
        """
        if self._busy.locked() or not rclpy.ok():
            return
        try:
            self._on_robot(self._fake_frame if self.fake else self.runner.keepalive)
            self._publish_status(self._on_robot(
                lambda: fault_reason(self.control, self.receive)) or "")
        except RuntimeError as exc:
            if rclpy.ok():
                self.get_logger().warning(f"robot idle check: {exc}", throttle_duration_sec=10.0)

    def _publish_status(self, fault: str, busy: bool = False) -> None:
        """Publish ``executor/status`` when it changed, or once a second."""
        state = (self.runner.armed, busy, fault)
        if state == self._status and time.monotonic() - self._status_time < 1.0:
            return
        self._status, self._status_time = state, time.monotonic()
        msg = ExecutorStatus(armed=state[0], busy=busy, fault=fault,
                             protective_stop="protective stop" in fault,
                             emergency_stop="emergency stop" in fault)
        msg.header.stamp = self.get_clock().now().to_msg()
        self.status_pub.publish(msg)

    # ------------------------------------------------------------------ services
    def _arm(self, req, res):
        if req.data:
            self.runner.arm()
            res.message = "ARMED: the arm moves on the next homing or rollout"
            self.get_logger().warning(res.message)
        else:
            self.runner.disarm()
            self._robot_thread.submit(self.runner.stop)
            res.message = "disarmed: motion stopped"
            self.get_logger().info(res.message)
        res.success = True
        self._publish_status(self._status[2] if self._status else "", self._busy.locked())
        return res

    def _home(self, _req, res):
        if not self._busy.acquire(blocking=False):
            res.success, res.message = False, "a rollout or homing is running"
            return res
        try:
            res.message = self._on_robot(self.runner.home)
            res.success = True
        except (RobotFault, RuntimeError) as exc:
            res.success, res.message = False, str(exc)
        finally:
            self._busy.release()
        return res

    def _fake_apply(self, req, res):
        missing = self._on_robot(lambda: self.robot.apply(list(req.perturbations)))
        res.status = ApplyPerturbation.Response.STATUS_APPLIED
        res.message = "simulated" + (f"; not simulated: {', '.join(missing)}" if missing else "")
        return res

    def _fake_reset(self, req, res):
        def reset() -> None:
            self.robot.reset(int(req.seed))
            self.robot.clear_faults()  # the operator recovers the robot while resetting

        self._on_robot(reset)
        res.success, res.message = True, f"simulated scene reset, seed {req.seed}"
        return res

    # ------------------------------------------------------------------ rollouts
    def _publish_state(self, rollout_id: str, phase: int, snap: Snapshot) -> None:
        g = snap.gripper
        msg = RolloutState(rollout_id=rollout_id, phase=phase, tcp_pose=list(snap.tcp_pose),
                           joint_positions=list(snap.joint_positions),
                           lowest_tcp_z=snap.lowest_tcp_z, gripper_opening=g.opening,
                           gripper_width=g.width,
                           object_detected=-1 if g.object_detected is None
                           else int(g.object_detected))
        msg.header.stamp = self.get_clock().now().to_msg()
        self.state_pub.publish(msg)

    def _on_goal(self, goal) -> GoalResponse:
        if goal.max_steps < 1:
            self.get_logger().warning(f"rejecting rollout {goal.rollout_id}: max_steps < 1")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _execute(self, handle) -> ExecuteRollout.Result:
        goal = handle.request
        result = ExecuteRollout.Result()
        if not self._busy.acquire(blocking=False):
            handle.abort()
            result.status = ExecuteRollout.Result.STATUS_ABORTED
            result.reason = "another rollout or homing is running"
            return result
        self._publish_status(self._status[2] if self._status else "", busy=True)
        try:
            def run():
                if self.runner.armed:
                    try:
                        self.runner.home()
                    except RobotFault as exc:
                        return None, f"cannot reach the start pose: {exc}"
                return self.runner.run(
                    int(goal.max_steps), float(goal.timeout_s),
                    on_step=lambda s, t: handle.publish_feedback(
                        ExecuteRollout.Feedback(step=s, elapsed=t)),
                    should_cancel=lambda: handle.is_cancel_requested,
                    on_start=lambda snap: self._publish_state(
                        goal.rollout_id, RolloutState.PHASE_START, snap)), ""

            run_result, error = self._on_robot(run)
            if run_result is None:
                status, steps, duration, reason = RolloutStatus.ABORTED, 0, 0.0, error
            else:
                status, steps = run_result.status, run_result.steps
                duration, reason = run_result.duration, run_result.reason
                if run_result.end is not None and run_result.start is not None:
                    self._publish_state(goal.rollout_id, RolloutState.PHASE_END, run_result.end)
                for note in run_result.notes:
                    self.get_logger().warning(f"rollout {goal.rollout_id}: {note}")
            if self.fake:
                self._on_robot(self._fake_frame)
        finally:
            self._busy.release()
        text = f"rollout {goal.rollout_id}: {status.value} after {steps} steps: {reason}"
        if status == RolloutStatus.COMPLETED:
            self.get_logger().info(text)
        else:  # rclpy: one call site logs at one severity
            self.get_logger().warning(text)
        result.status, result.steps = _RESULT_STATUS[status], steps
        result.duration, result.reason = float(duration), reason
        if status == RolloutStatus.CANCELLED and handle.is_cancel_requested:
            handle.canceled()
        elif status == RolloutStatus.COMPLETED:
            handle.succeed()
        else:
            handle.abort()
        return result

    def destroy_node(self) -> None:
        runner = getattr(self, "runner", None)
        if runner is not None:
            runner.disarm()
            self._on_robot(runner.stop)
        self._robot_thread.shutdown()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``policy_executor_node`` executable."""
    spin_node(PolicyExecutorNode, "policy_executor",
              fatal=(ParameterError, PolicyError, CatalogError, FileNotFoundError), args=args)


if __name__ == "__main__":
    main()
