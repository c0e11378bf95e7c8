"""success_detector node: serves ``judge_rollout`` for real rollouts and publishes
``rollout/outcome``.

It listens to ``executor/rollout_state`` (the robot at the start and end of each rollout) and to
``camera/image_raw`` (the last frame before the start, the first frame after the end), and judges
with the rules of :mod:`robomd_ur5e.detector` combined per ``mode``.

Operator override: ``detector/override`` (std_srvs/SetBool; data = success) sets the verdict of the
last rollout. Given before the diagnoser asks (``override_window`` seconds are waited for one when
the rules cannot decide), it is the verdict; given later, the corrected outcome is published on
``rollout/outcome`` (judge ``operator``) for the record.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_srvs.srv import SetBool

from robomd_diagnoser.ros.image import from_msg
from robomd_diagnoser.ros.node import Param, ParameterError, declare, spin_node
from robomd_msgs.msg import RolloutOutcome, RolloutState
from robomd_msgs.srv import JudgeRollout
from robomd_ur5e.detector import COMBINE_MODES, Detector, RobotEnd, StateRule, Verdict, VisionRule

#: Every parameter is read-only once the node runs.
PARAMETERS: dict[str, Param] = {
    "mode": Param("state", f"how the rules combine: {' | '.join(COMBINE_MODES)}"),
    "state_min_width": Param(0.004, "state rule: a smaller finger gap means closed on nothing, m"),
    "state_max_width": Param(0.080, "state rule: a larger finger gap means open, m"),
    "state_min_lift": Param(0.05, "state rule: the TCP must end this far above its lowest "
                                  "point, m"),
    "vision_hsv_low": Param([170, 120, 60], "vision rule: lower HSV bound (H 0..179; H low > "
                                            "H high wraps, for red)"),
    "vision_hsv_high": Param([10, 255, 255], "vision rule: upper HSV bound"),
    "vision_metric": Param("rise", "vision rule: rise (centroid moves up) or area (blob grows)"),
    "vision_min_rise_px": Param(5.0, "vision rule: pixels the blob's centroid must rise"),
    "vision_min_area_ratio": Param(1.3, "vision rule: end area / start area needed"),
    "vision_min_blob_px": Param(4, "vision rule: smaller blobs are noise, pixels"),
    "state_timeout": Param(5.0, "seconds to wait for the executor's end state of a rollout"),
    "frame_timeout": Param(2.0, "seconds to wait for a camera frame after the rollout ended"),
    "override_window": Param(0.0, "seconds to wait for an operator override when the rules cannot "
                                  "decide (0: answer undecided at once)"),
}
_KEEP = 32  # rollouts remembered


@dataclass
class _Rollout:
    start: RolloutState | None = None
    end: RolloutState | None = None
    start_image: np.ndarray | None = None
    end_image: np.ndarray | None = None
    override: bool | None = None
    judged: RolloutOutcome | None = None


def detector_from(p: dict) -> Detector:
    """The detector the parameters describe.

    :raises ParameterError: naming the bad parameter.
    """
    try:
        return Detector(
            mode=str(p["mode"]),
            state_rule=StateRule(float(p["state_min_width"]), float(p["state_max_width"]),
                                 float(p["state_min_lift"])),
            vision_rule=VisionRule(tuple(int(v) for v in p["vision_hsv_low"]),
                                   tuple(int(v) for v in p["vision_hsv_high"]),
                                   str(p["vision_metric"]), float(p["vision_min_rise_px"]),
                                   float(p["vision_min_area_ratio"]),
                                   int(p["vision_min_blob_px"])))
    except ValueError as exc:
        raise ParameterError(f"detector parameters: {exc}") from None


class SuccessDetectorNode(Node):
    """Judges rollouts from the executor's state and the camera."""

    def __init__(self) -> None:
        super().__init__("success_detector", namespace="/robomd")
        self.p = declare(self, PARAMETERS)
        self.detector = detector_from(self.p)
        self._cond = threading.Condition()
        self._rollouts: OrderedDict[str, _Rollout] = OrderedDict()
        self._last_id = ""
        self._frame: tuple[Image, float] | None = None
        group = ReentrantCallbackGroup()
        self.outcome_pub = self.create_publisher(RolloutOutcome, "rollout/outcome", 10)
        self.create_subscription(RolloutState, "executor/rollout_state", self._on_state, 10,
                                 callback_group=group)
        if self.detector.needs_images:
            self.create_subscription(Image, "camera/image_raw", self._on_image,
                                     qos_profile_sensor_data, callback_group=group)
        self.create_service(JudgeRollout, "judge_rollout", self._judge, callback_group=group)
        self.create_service(SetBool, "detector/override", self._override, callback_group=group)
        self.get_logger().info(f"success detector ready: mode {self.detector.mode}")

    def _entry(self, rollout_id: str) -> _Rollout:
        entry = self._rollouts.setdefault(rollout_id, _Rollout())
        self._rollouts.move_to_end(rollout_id)
        while len(self._rollouts) > _KEEP:
            self._rollouts.popitem(last=False)
        return entry

    def _on_image(self, msg: Image) -> None:
        with self._cond:
            self._frame = (msg, time.monotonic())
            for entry in self._rollouts.values():
                if entry.end is not None and entry.end_image is None:
                    entry.end_image = from_msg(msg)
            self._cond.notify_all()

    def _on_state(self, msg: RolloutState) -> None:
        with self._cond:
            entry = self._entry(msg.rollout_id)
            if msg.phase == RolloutState.PHASE_START:
                entry.start = msg
                self._last_id = msg.rollout_id
                if self._frame is not None:
                    entry.start_image = from_msg(self._frame[0])
            else:
                entry.end = msg
            self._cond.notify_all()

    def _wait(self, ready, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not ready() and time.monotonic() < deadline:
                self._cond.wait(max(0.0, deadline - time.monotonic()))

    def _verdict(self, rollout_id: str) -> tuple[Verdict, str]:
        entry = self._rollouts.get(rollout_id)
        if entry is None or entry.end is None:
            return Verdict(None, 0.0, f"no end state from the executor for rollout "
                                      f"{rollout_id!r}"), "detector"
        if entry.override is not None:
            return Verdict(entry.override, 1.0, "operator override"), "operator"
        end = entry.end
        robot = RobotEnd(end.tcp_pose[2], end.lowest_tcp_z, end.gripper_width,
                         None if end.object_detected < 0 else bool(end.object_detected))
        return self.detector.judge(robot, entry.start_image, entry.end_image), "detector"

    def _judge(self, req, res):
        rid = req.rollout_id
        self._wait(lambda: rid in self._rollouts and self._rollouts[rid].end is not None,
                   float(self.p["state_timeout"]))
        if self.detector.needs_images:
            self._wait(lambda: self._rollouts.get(rid, _Rollout()).end_image is not None,
                       float(self.p["frame_timeout"]))
        verdict, judge = self._verdict(rid)
        if verdict.success is None and float(self.p["override_window"]) > 0:
            self.get_logger().warning(f"rollout {rid}: rules undecided ({verdict.reason}); "
                                      f"waiting {self.p['override_window']} s for "
                                      "detector/override")
            self._wait(lambda: self._rollouts.get(rid, _Rollout()).override is not None,
                       float(self.p["override_window"]))
            verdict, judge = self._verdict(rid)
        outcome = self._outcome(rid, verdict, judge)
        res.outcome = outcome
        res.judged = verdict.success is not None
        if res.judged:
            with self._cond:
                if rid in self._rollouts:
                    self._rollouts[rid].judged = outcome
            self.outcome_pub.publish(outcome)
        word = ("success" if verdict.success else "failure") if res.judged else "undecided"
        self.get_logger().info(f"rollout {rid}: {word} ({judge}, confidence "
                               f"{verdict.confidence:.2f}): {verdict.reason}")
        return res

    def _outcome(self, rollout_id: str, verdict: Verdict, judge: str) -> RolloutOutcome:
        outcome = RolloutOutcome(rollout_id=rollout_id, success=bool(verdict.success),
                                 confidence=float(verdict.confidence), reason=verdict.reason,
                                 judge=judge)
        outcome.header.stamp = self.get_clock().now().to_msg()
        return outcome

    def _override(self, req, res):
        with self._cond:
            rid = self._last_id
            entry = self._rollouts.get(rid)
            if entry is None:
                res.success, res.message = False, "no rollout has started yet"
                return res
            entry.override = bool(req.data)
            already = entry.judged is not None
            self._cond.notify_all()
        verdict = "success" if req.data else "failure"
        if already:
            self.outcome_pub.publish(self._outcome(rid, Verdict(bool(req.data), 1.0,
                                                                "operator override"), "operator"))
            res.message = (f"rollout {rid} set to {verdict}; it was already judged, so the "
                           "campaign keeps the detector's verdict and the correction is on "
                           "rollout/outcome")
        else:
            res.message = f"rollout {rid} set to {verdict}"
        res.success = True
        self.get_logger().info(res.message)
        return res


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``success_detector_node`` executable."""
    spin_node(SuccessDetectorNode, "success_detector", args=args)


if __name__ == "__main__":
    main()
