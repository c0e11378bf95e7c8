"""console node: the operator's console in the browser (one page, served by FastAPI + uvicorn).

Shows the camera (``camera/image_raw``), the pending prompt (``operator/prompt``) with, when a
simulated twin publishes them, a preview of the requested scene next to the nominal one
(``operator/preview/requested`` and ``operator/preview/nominal``: sensor_msgs/Image, latched,
``header.frame_id`` = the prompt id they illustrate), the executor's arming and e-stop state
(``executor/status``) and the campaign's progress (``campaign/status``, ``campaign/rollouts``,
``rollout/outcome``, ``campaign/report``). Its Done / Skip / Abort and Arm / Disarm buttons call
``operator/respond`` and ``executor/arm`` through
:class:`~robomd_ur5e.operator_client.OperatorClient`, as ``robomd operator`` does; ``read_only``
(a simulated campaign) has no buttons.

Bound to a loopback address (the default) it needs no token; bound beyond localhost every request
must carry ``token`` (generated and logged with the URL when not given).
"""

from __future__ import annotations

import time
from pathlib import Path

import cv2
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from robomd_diagnoser.console_spec import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    console_token,
    console_url,
)
from robomd_diagnoser.ros.convert import MSG_TO_STATUS
from robomd_diagnoser.ros.image import ImageEncodingError, from_msg
from robomd_diagnoser.ros.node import LATCHED, Param, ParameterError, declare, spin_node
from robomd_diagnoser.store import RolloutRecord
from robomd_msgs.msg import (
    CampaignStatus,
    ExecutorStatus,
    FailureReport,
    OperatorPrompt,
    RolloutOutcome,
)
from robomd_msgs.msg import RolloutRecord as RolloutRecordMsg
from robomd_ur5e.console.app import ConsoleServer, create_app
from robomd_ur5e.console.state import CAMERA, PREVIEW_NOMINAL, PREVIEW_REQUESTED, ConsoleState
from robomd_ur5e.operator_client import OperatorClient

#: Every parameter is read-only once the node runs.
PARAMETERS: dict[str, Param] = {
    "host": Param(DEFAULT_HOST, "bind address (beyond localhost the token is required)"),
    "port": Param(DEFAULT_PORT, "TCP port"),
    "token": Param("", "token required in the URL (?token=); generated beyond localhost if empty"),
    "read_only": Param(False, "no operator controls (a simulated campaign)"),
    "output": Param("", "campaign directory; its videos/ are served as the latest rollout video"),
    "max_fps": Param(10.0, "camera frames per second encoded and sent to pages at most"),
    "jpeg_quality": Param(85, "JPEG quality of the frames sent to pages, 1..100"),
}
_STATES = {CampaignStatus.STATE_IDLE: "idle", CampaignStatus.STATE_RUNNING: "running",
           CampaignStatus.STATE_PAUSED: "paused", CampaignStatus.STATE_STOPPING: "stopping",
           CampaignStatus.STATE_DONE: "done", CampaignStatus.STATE_FAULT: "fault"}
_KINDS = {OperatorPrompt.KIND_APPLY: "apply", OperatorPrompt.KIND_RESET: "reset"}


def _nan_none(x: float) -> float | None:
    return None if x != x else float(x)


class ConsoleNode(Node):
    """Feeds a :class:`ConsoleState` from the graph and serves it."""

    def __init__(self) -> None:
        super().__init__("console", namespace="/robomd")
        p = declare(self, PARAMETERS)
        if not 0 < int(p["port"]) < 65536:
            raise ParameterError(f"parameter port={p['port']}: a TCP port, 1..65535")
        if not 1 <= int(p["jpeg_quality"]) <= 100:
            raise ParameterError(f"parameter jpeg_quality={p['jpeg_quality']}: 1..100")
        if not float(p["max_fps"]) > 0:
            raise ParameterError(f"parameter max_fps={p['max_fps']}: a positive rate")
        self.host, self.port = str(p["host"]), int(p["port"])
        self.token = console_token(self.host, str(p["token"]))
        self.jpeg = [int(cv2.IMWRITE_JPEG_QUALITY), int(p["jpeg_quality"])]
        self.frame_period = 1.0 / float(p["max_fps"])
        self._last_frame = 0.0
        read_only = bool(p["read_only"])
        self.state = ConsoleState(read_only, Path(p["output"]) if p["output"] else None)
        operator = None if read_only else OperatorClient(self, self.get_namespace(), 5.0)
        self.create_subscription(Image, "camera/image_raw", self._on_camera,
                                 qos_profile_sensor_data)
        for topic, name in (("operator/preview/requested", PREVIEW_REQUESTED),
                            ("operator/preview/nominal", PREVIEW_NOMINAL)):
            self.create_subscription(Image, topic, lambda m, n=name: self._on_preview(n, m),
                                     LATCHED)
        self.create_subscription(OperatorPrompt, "operator/prompt", self._on_prompt, LATCHED)
        self.create_subscription(ExecutorStatus, "executor/status", self._on_executor, LATCHED)
        self.create_subscription(CampaignStatus, "campaign/status", self._on_status, 10)
        self.create_subscription(FailureReport, "campaign/report", self._on_report, LATCHED)
        self.create_subscription(RolloutRecordMsg, "campaign/rollouts", self._on_rollout, 100)
        self.create_subscription(RolloutOutcome, "rollout/outcome", self._on_outcome, 10)
        self.server = ConsoleServer(create_app(self.state, operator, self.token,
                                               float(p["max_fps"])), self.host, self.port)
        try:
            self.server.start()
        except OSError as exc:
            raise ParameterError(str(exc)) from None
        mode = "read-only" if read_only else "operator"
        self.get_logger().info(f"{mode} console at {console_url(self.host, self.port, self.token)}")

    # ------------------------------------------------------------------ images
    def _encode(self, msg: Image) -> bytes | None:
        try:
            rgb = from_msg(msg)
        except ImageEncodingError as exc:
            self.get_logger().warning(f"image not shown: {exc}", throttle_duration_sec=10.0)
            return None
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), self.jpeg)
        return buf.tobytes() if ok else None

    def _on_camera(self, msg: Image) -> None:
        now = time.monotonic()
        if now - self._last_frame < self.frame_period:
            return
        self._last_frame = now
        jpeg = self._encode(msg)
        if jpeg is not None:
            self.state.set_frame(CAMERA, jpeg)

    def _on_preview(self, name: str, msg: Image) -> None:
        jpeg = self._encode(msg)
        if jpeg is not None:
            self.state.set_frame(name, jpeg, tag=msg.header.frame_id)

    # ------------------------------------------------------------------ campaign
    def _on_prompt(self, msg: OperatorPrompt) -> None:
        if msg.kind not in _KINDS or not msg.prompt_id:
            self.state.set_prompt(None)
            return
        self.state.set_prompt({
            "id": msg.prompt_id, "kind": _KINDS[msg.kind], "instruction": msg.instruction,
            "perturbations": [{"name": q.name, "text": q.text} for q in msg.perturbations],
            "timeout_s": float(msg.timeout_s), "since": time.time()})

    def _on_executor(self, msg: ExecutorStatus) -> None:
        self.state.set_executor({"armed": msg.armed, "busy": msg.busy,
                                 "protective_stop": msg.protective_stop,
                                 "emergency_stop": msg.emergency_stop, "fault": msg.fault})

    def _on_status(self, msg: CampaignStatus) -> None:
        self.state.set_status({
            "campaign_id": msg.campaign_id, "state": _STATES.get(msg.state, str(msg.state)),
            "done": int(msg.rollouts_done), "budget": int(msg.rollouts_budget),
            "failures": int(msg.failures), "aborted": int(msg.aborted),
            "current": list(msg.current_perturbations), "message": msg.message})

    def _on_report(self, msg: FailureReport) -> None:
        self.state.set_report({
            "campaign_id": msg.campaign_id, "agent": msg.agent, "report_path": msg.report_path,
            "completed": int(msg.rollouts_completed), "aborted": int(msg.rollouts_aborted),
            "rows": [{"rank": int(m.rank), "name": m.perturbation.name,
                      "text": m.perturbation.text, "probability": float(m.probability),
                      "rate": _nan_none(m.failure_rate), "lo": float(m.failure_rate_low),
                      "hi": float(m.failure_rate_high), "trials": int(m.trials),
                      "failures": int(m.failures)} for m in msg.modes]})

    def _on_rollout(self, msg: RolloutRecordMsg) -> None:
        status = MSG_TO_STATUS.get(msg.status)
        if status is None:
            return
        completed = msg.status == RolloutRecordMsg.STATUS_COMPLETED
        self.state.add_rollout(RolloutRecord(
            key=msg.key, perturbations=tuple(q.name for q in msg.perturbations), seed=msg.seed,
            status=status.value, success=bool(msg.success) if completed else None,
            steps=int(msg.steps), duration=float(msg.duration), reason=msg.reason))

    def _on_outcome(self, msg: RolloutOutcome) -> None:
        self.state.add_outcome({"rollout_id": msg.rollout_id, "success": bool(msg.success),
                                "judge": msg.judge, "confidence": float(msg.confidence),
                                "reason": msg.reason})

    def destroy_node(self) -> None:
        self.server.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``console_node`` executable."""
    spin_node(ConsoleNode, "console", args=args)


if __name__ == "__main__":
    main()
