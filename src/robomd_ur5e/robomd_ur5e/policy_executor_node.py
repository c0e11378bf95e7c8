"""policy_executor node: serves ``execute_rollout`` on the UR5e (ur_rtde) or on fake hardware.

Services: ``executor/arm`` (std_srvs/SetBool: nothing moves until an operator arms the executor, and
arming is refused, with the reason, unless the robot is fit for a campaign; ``false`` disarms and
stops the arm), ``executor/home`` (std_srvs/Trigger: move to ``home_q``; the operator prompt calls
it on every ``reset_scene``), ``executor/digital`` (robomd_msgs/SetDigitalPerturbations: the digital
perturbations of the coming rollouts, which the operator prompt sets with every scene change and
clears on reset; see :mod:`robomd_diagnoser.digital`). Publishes ``executor/rollout_state``
(robomd_msgs/RolloutState) at the start and end of every rollout, for the success detector, and
``executor/status`` (robomd_msgs/ExecutorStatus, latched: armed, busy, protective and emergency
stop, fault) when it changes and once a second, for the operator's consoles (a robot fault disarms
the executor). ``executor/place_back`` (std_srvs/Trigger) is the automatic reset: put the object the
last rollout left in the gripper back where it was grasped, home, and check the scene with the
camera (:meth:`robomd_ur5e.runner.RolloutRunner.place_back`); the operator prompt calls it when
``auto_reset`` is on, and ``executor/home`` when a person resets the scene. Every call to the robot
runs on one dedicated thread (with fake hardware, the simulator's GL context is bound to it); see
:mod:`robomd_ur5e.runner` for the control loop and its faults.

With ``use_fake_hardware``, the robot is :mod:`robomd_ur5e.fake` (the simulated UR5e); the node
then also publishes the simulated scene camera on ``camera/image_raw`` and serves
``fake_hardware/apply_perturbation`` and ``fake_hardware/reset_scene`` (what the operator's
hands do to the simulated scene once a prompt is answered).
"""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import rclpy
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_srvs.srv import SetBool, Trigger

from robomd_diagnoser.catalog import CatalogError
from robomd_diagnoser.policy import PolicyError, make_policy
from robomd_diagnoser.ros.convert import msg_to_perturbation
from robomd_diagnoser.ros.image import from_msg, to_msg
from robomd_diagnoser.ros.node import (
    LATCHED,
    Param,
    ParameterError,
    RolloutActionServer,
    RolloutReport,
    declare,
    spin_node,
)
from robomd_diagnoser.world import RolloutStatus
from robomd_msgs.action import ExecuteRollout
from robomd_msgs.msg import ExecutorStatus, RolloutState
from robomd_msgs.srv import ApplyPerturbation, ResetScene, SetDigitalPerturbations
from robomd_ur5e.detector import StateRule, VisionRule
from robomd_ur5e.fake import FAULTS
from robomd_ur5e.hardware import (
    GRIPPERS,
    ArmingChecks,
    RobotFault,
    connect_dashboard,
    connect_robot,
    fault_reason,
    make_gripper,
)
from robomd_ur5e.runner import ExecutorSettings, PlaceBack, RolloutRunner, Snapshot
from robomd_ur5e.safety import ActionMapper, SafetyEnvelope, SafetyLimits

_UR5E_JOINT_LIMIT = 2 * math.pi
#: Every parameter is read-only once the node runs.
PARAMETERS: dict[str, Param] = {
    "robot_ip": Param("", "the UR controller's IP address (required without fake hardware)"),
    "use_fake_hardware": Param(False, "drive the simulated UR5e instead of a real robot"),
    "policy": Param("", "policy under test: torchscript:<path>, module:<pkg.mod:factory>, "
                        "bc:<path>"),
    "device": Param("cpu", "torch device of the policy"),
    "rate": Param(20.0, "control rate, Hz (the policy's control frequency)"),
    "pos_scale": Param(0.05, "metres per unit of the action's position delta per control period"),
    "rot_scale": Param(0.5, "radians per unit of the action's rotation delta per control period"),
    "action_frame_rpy": Param([0.0, 0.0, 0.0], "roll, pitch, yaw of the policy's action frame in "
                                               "the robot base frame, rad"),
    "image_size": Param(0, "resize camera frames to this square size for the policy (0: the "
                           "policy's own image_size if it declares one, else as received)"),
    "frame_timeout": Param(1.0, "a camera frame older than this aborts the rollout, s"),
    "home_q": Param([0.0, -1.571, 1.571, -1.571, -1.571, 0.0], "home joint positions, rad"),
    "home_speed": Param(0.5, "joint speed of the homing move, rad/s"),
    "home_accel": Param(0.5, "joint acceleration of the homing move, rad/s^2"),
    "home_tolerance": Param(0.01, "joint error that counts as at home, rad"),
    "home_timeout": Param(30.0, "seconds the homing move may take"),
    "watchdog_hz": Param(10.0, "RTDE watchdog minimum frequency, Hz (0: off)"),
    "min_speed_scaling": Param(1.0, "arming is refused below this speed scaling (pendant slider "
                                    "x controller scaling); 1.0 for a campaign", range=(0.0, 1.0)),
    "require_remote_control": Param(True, "arming is refused unless the pendant is in Remote "
                                          "Control"),
    "expected_program": Param("", "arming is refused unless the Dashboard's loaded program "
                                  "contains this text (empty: not checked)"),
    "workspace_min": Param([-0.6, -0.6, 0.02], "lower corner of the TCP workspace box, m, "
                                                "base frame"),
    "workspace_max": Param([0.6, 0.6, 0.6], "upper corner of the TCP workspace box, m, base frame"),
    "max_speed": Param(0.25, "TCP speed limit, m/s"),
    "max_accel": Param(1.0, "TCP acceleration limit, m/s^2"),
    "max_rot_speed": Param(1.0, "TCP angular speed limit, rad/s"),
    "max_rot_accel": Param(4.0, "TCP angular acceleration limit, rad/s^2"),
    "joint_min": Param([-_UR5E_JOINT_LIMIT] * 6, "lower joint limits, rad"),
    "joint_max": Param([_UR5E_JOINT_LIMIT] * 6, "upper joint limits, rad"),
    "joint_margin": Param(0.05, "the arm stops this far inside its joint limits, rad"),
    "joint_lookahead": Param(0.2, "seconds ahead the joint limit check extrapolates"),
    "gripper": Param("robotiq", "robotiq (URCap socket, port 63352) or digital (RTDE digital out)"),
    "gripper_pin": Param(0, "digital gripper: standard digital output 0..7"),
    "gripper_close_level": Param(True, "digital gripper: output level that closes it"),
    "gripper_max_width": Param(0.085, "finger gap when open, m (2F-85: 0.085, 2F-140: 0.14)"),
    "place_hover": Param(PlaceBack.hover, "place-back: approach and retreat height above the "
                                          "place pose, m"),
    "place_clearance": Param(PlaceBack.clearance, "place-back: the object is released this far "
                                                  "above the TCP's grasp height, m"),
    "place_speed": Param(PlaceBack.speed, "place-back: TCP speed, m/s (the envelope still "
                                          "limits it)"),
    "place_settle_time": Param(PlaceBack.settle_time, "place-back: seconds after homing before "
                                                      "the scene check's frame"),
    "place_check_px": Param(PlaceBack.check_px, "place-back: the object's blob must be this "
                                                "close to its reference place, pixels"),
    "state_min_width": Param(StateRule.min_width, "place-back: the success detector's parameter "
                                                  "(bringup copies it): the held-object gap"),
    "state_max_width": Param(StateRule.max_width, "place-back: the success detector's parameter "
                                                  "(bringup copies it)"),
    "vision_hsv_low": Param(list(VisionRule.hsv_low), "place-back check: the success detector's "
                                                      "parameter (bringup copies it)"),
    "vision_hsv_high": Param(list(VisionRule.hsv_high), "place-back check: the success "
                                                        "detector's parameter (bringup copies it)"),
    "vision_min_blob_px": Param(VisionRule.min_blob_px, "place-back check: the success "
                                                        "detector's parameter (bringup copies it)"),
    "frame_id": Param("scene_camera", "fake hardware: frame_id of the simulated camera images"),
    "fake_task": Param("lift", "fake hardware: the simulated task"),
    "fake_camera_size": Param(84, "fake hardware: simulated camera size, pixels"),
    "fake_camera_rate": Param(10.0, "fake hardware: camera publish rate between rollouts, Hz"),
    "fake_faults": Param([""], "fake hardware: faults to inject, '<fault>@<control step>' with "
                               f"fault one of {', '.join(FAULTS)} (cleared by reset_scene)"),
}

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
            image_size=image_size,
            arming=ArmingChecks(float(p["min_speed_scaling"]), bool(p["require_remote_control"]),
                                str(p["expected_program"])),
            place=PlaceBack(
                hover=float(p["place_hover"]), clearance=float(p["place_clearance"]),
                speed=float(p["place_speed"]), settle_time=float(p["place_settle_time"]),
                check_px=float(p["place_check_px"]),
                hold=StateRule(float(p["state_min_width"]), float(p["state_max_width"])),
                vision=VisionRule(tuple(int(v) for v in p["vision_hsv_low"]),
                                  tuple(int(v) for v in p["vision_hsv_high"]),
                                  min_blob_px=int(p["vision_min_blob_px"]))))
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


class PolicyExecutorNode(RolloutActionServer):
    """The arm's rollout server: real ur_rtde interfaces, or the fakes with use_fake_hardware."""

    busy_reason = "another rollout or homing is running"
    fault_reason = "executor fault"

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
        self.start_world_thread("robot")
        self.busy = threading.Lock()
        self._frame: tuple[np.ndarray, float] | None = None
        self.frame_id = str(p["frame_id"])
        group = ReentrantCallbackGroup()
        self.state_pub = self.create_publisher(RolloutState, "executor/rollout_state", 10)
        self.status_pub = self.create_publisher(ExecutorStatus, "executor/status", LATCHED)
        self._status: tuple[bool, bool, str] | None = None
        self._status_time = 0.0
        self._status_lock = threading.Lock()
        self.image_pub = None
        if self.fake:
            self._build_fake(p, group)
        else:
            self._build_real(p, group)
        policy = self.on_world_thread(
            lambda: make_policy(str(p["policy"]), None, str(p["device"])))
        image_size = int(p["image_size"]) or int(getattr(policy, "meta", {}).get("image_size", 0))
        self.runner = self.on_world_thread(lambda: RolloutRunner(
            self.control, self.receive, self.dashboard, self.gripper, policy,
            SafetyEnvelope(limits_from(p)),
            ActionMapper(float(p["pos_scale"]), float(p["rot_scale"]), 1.0 / float(p["rate"]),
                         _floats(p, "action_frame_rpy", 3)),
            self._fake_frame if self.fake else self._latest_frame, settings_from(p, image_size),
            sleep=(lambda _s: None) if self.fake else time.sleep))
        self.create_service(SetBool, "executor/arm", self._arm, callback_group=group)
        self.create_service(Trigger, "executor/home", self._home, callback_group=group)
        self.create_service(Trigger, "executor/place_back", self._place_back,
                            callback_group=group)
        self.create_service(SetDigitalPerturbations, "executor/digital", self._set_digital,
                            callback_group=group)
        self.serve_rollouts(group)
        idle = 1.0 / max(2.0 * float(p["watchdog_hz"]), float(p["fake_camera_rate"]), 1.0)
        self.create_timer(idle, self._idle)
        self._publish_status()
        self.get_logger().info(
            f"policy executor ready ({'FAKE hardware' if self.fake else p['robot_ip']}), policy "
            f"{p['policy']}, {p['rate']} Hz; DISARMED until executor/arm is called")

    # ------------------------------------------------------------------ construction
    def _build_real(self, p: dict, group) -> None:
        ip = str(p["robot_ip"])
        try:
            self.control, self.receive = connect_robot(ip)
            self.dashboard = connect_dashboard(ip)
            self.gripper = make_gripper(str(p["gripper"]), ip, pin=int(p["gripper_pin"]),
                                        close_level=bool(p["gripper_close_level"]),
                                        max_width=float(p["gripper_max_width"]))
        except RobotFault as exc:
            raise ParameterError(str(exc)) from None
        self.create_subscription(Image, "camera/image_raw", self._on_image,
                                 qos_profile_sensor_data, callback_group=group)

    def _build_fake(self, p: dict, group) -> None:
        from robomd_ur5e.fake import (
            FakeDashboard,
            FakeGripper,
            FakeRTDEControl,
            FakeRTDEReceive,
            make_fake_robot,
        )

        faults = parse_faults(list(p["fake_faults"]))
        self.camera_size = int(p["fake_camera_size"])
        self.robot = self.on_world_thread(
            lambda: make_fake_robot(str(p["fake_task"]), self.camera_size))
        if abs(float(p["rate"]) - 1.0 / self.robot.period) > 1e-6:
            raise ParameterError(f"parameter rate={p['rate']}: fake hardware steps the simulator "
                                 f"at its control rate, {1.0 / self.robot.period:.0f} Hz")
        for fault, step in faults:
            self.robot.inject(fault, step)
        self.control, self.receive = FakeRTDEControl(self.robot), FakeRTDEReceive(self.robot)
        self.dashboard = FakeDashboard(self.robot)
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
        """Between rollouts: kick the watchdog and poll for faults; with fake hardware, also
        publish the camera.

        Queued behind nothing long: a rollout or homing keeps the robot thread (and kicks the
        watchdog itself), so the idle tick skips while one runs.
        """
        if self.busy.locked() or not rclpy.ok():
            return

        def tick() -> str:
            self.runner.keepalive()
            if self.fake:
                self._fake_frame()
            return fault_reason(self.control, self.receive) or ""

        try:
            self._publish_status(self.on_world_thread(tick))
        except RuntimeError as exc:
            if rclpy.ok():
                self.get_logger().warning(f"robot idle check: {exc}", throttle_duration_sec=10.0)
            self._publish_status()

    def _publish_status(self, fault: str | None = None, busy: bool = False) -> None:
        """Publish ``executor/status`` when it changed, or once a second; log a disarm (a robot
        fault disarms from the robot thread) with its reason.

        :param fault: why the arm may not move ("" when it may); None keeps the last one known.
        :param busy: a rollout or homing is running.
        """
        with self._status_lock:
            if fault is None:
                fault = self._status[2] if self._status else ""
            was_armed = self._status[0] if self._status else None
            state = (self.runner.armed, busy, fault)
            if state == self._status and time.monotonic() - self._status_time < 1.0:
                return
            self._status, self._status_time = state, time.monotonic()
            msg = ExecutorStatus(armed=state[0], busy=busy, fault=fault,
                                 protective_stop="protective stop" in fault,
                                 emergency_stop="emergency stop" in fault)
            msg.header.stamp = self.get_clock().now().to_msg()
            self.status_pub.publish(msg)
        if was_armed and not state[0]:
            self.get_logger().warning(f"DISARMED: {self.runner.disarmed_because}")

    # ------------------------------------------------------------------ services
    def _arm(self, req, res):
        if req.data:
            try:
                res.message, res.success = self.on_world_thread(self.runner.arm), True
                self.get_logger().warning(res.message)
            except RobotFault as exc:
                res.message, res.success = str(exc), False
                self.get_logger().error(res.message)
        else:
            self.runner.disarm()
            self._world_thread.submit(self.runner.stop)
            res.message, res.success = "disarmed: motion stopped", True
            self.get_logger().info(res.message)
        self._publish_status(busy=self.busy.locked())
        return res

    def _home(self, _req, res):
        """Home before a person resets the scene (that scene becomes the check's reference)."""
        self.runner.scene_touched()
        return self._motion(self.runner.home, res)

    def _place_back(self, _req, res):
        return self._motion(self.runner.place_back, res)

    def _motion(self, move, res):
        """Run ``move`` on the robot thread unless a rollout or motion is running."""
        if not self.busy.acquire(blocking=False):
            res.success, res.message = False, "a rollout, homing or place-back is running"
            return res
        self._publish_status(busy=True)
        try:
            res.message = self.on_world_thread(move)
            res.success = True
        except (RobotFault, RuntimeError) as exc:
            res.success, res.message = False, str(exc)
        finally:
            self.busy.release()
            if self.fake:
                self.on_world_thread(self._fake_frame)
        self.get_logger().info(f"{'done' if res.success else 'refused'}: {res.message}")
        return res

    def _set_digital(self, req, res):
        """Set the digital perturbations on the robot thread: after a running rollout, never
        during one."""
        def set_levels() -> str:
            self.runner.digital.set(msg_to_perturbation(m) for m in req.perturbations)
            return self.runner.digital.describe()

        try:
            active = self.on_world_thread(set_levels)
            res.message, res.success = f"digital perturbations: {active}", True
            self.get_logger().info(res.message)
        except ValueError as exc:  # CatalogError, or a malformed Perturbation message
            res.message, res.success = f"digital perturbations refused: {exc}", False
            self.get_logger().error(res.message)
        return res

    def _fake_apply(self, req, res):
        missing = self.on_world_thread(lambda: self.robot.apply(list(req.perturbations)))
        res.status = ApplyPerturbation.Response.STATUS_APPLIED
        res.message = "simulated" + (f"; not simulated: {', '.join(missing)}" if missing else "")
        return res

    def _fake_reset(self, req, res):
        def reset() -> None:
            self.robot.reset(int(req.seed))
            self.robot.clear_faults()  # the operator recovers the robot while resetting

        self.on_world_thread(reset)
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

    def run_rollout(self, goal, handle) -> RolloutReport:
        self._publish_status(busy=True)

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
                    goal.rollout_id, RolloutState.PHASE_START, snap), seed=int(goal.seed)), ""

        run_result, error = self.on_world_thread(run)
        self._publish_status(busy=True)
        if run_result is None:
            report = RolloutReport(RolloutStatus.ABORTED, 0, error, 0.0)
        else:
            report = RolloutReport(run_result.status, run_result.steps, run_result.reason,
                                   float(run_result.duration))
            if run_result.end is not None and run_result.start is not None:
                self._publish_state(goal.rollout_id, RolloutState.PHASE_END, run_result.end)
            for note in run_result.notes:
                self.get_logger().warning(f"rollout {goal.rollout_id}: {note}")
        if self.fake:
            self.on_world_thread(self._fake_frame)
        text = (f"rollout {goal.rollout_id}: {report.status.value} after {report.steps} steps: "
                f"{report.reason}")
        if report.status == RolloutStatus.COMPLETED:
            self.get_logger().info(text)
        else:  # rclpy: one call site logs at one severity
            self.get_logger().warning(text)
        return report

    def destroy_node(self) -> None:
        runner = getattr(self, "runner", None)
        if runner is not None:
            runner.disarm()
            self.on_world_thread(runner.stop)
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``policy_executor_node`` executable."""
    spin_node(PolicyExecutorNode, "policy_executor",
              fatal=(ParameterError, PolicyError, CatalogError, FileNotFoundError), args=args)


if __name__ == "__main__":
    main()
