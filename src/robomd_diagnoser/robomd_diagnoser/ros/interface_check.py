"""Round-trip every robomd_msgs interface between two processes over DDS.

``interface_echo`` (a node) echoes messages and answers every service and the action;
:func:`run_check` drives it from another process and reports each exchange.
``robomd check-interfaces`` starts both; the interface tests use the same code.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import rclpy
from action_msgs.msg import GoalStatus
from rclpy.action import ActionClient, ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy

from robomd_msgs.action import ExecuteRollout
from robomd_msgs.msg import (
    CampaignStatus,
    FailureMode,
    FailureReport,
    OperatorPrompt,
    Perturbation,
    RolloutOutcome,
    RolloutRecord,
)
from robomd_msgs.srv import ApplyPerturbation, JudgeRollout, OperatorRespond, ResetScene

NAMESPACE = "/robomd_check"
MESSAGE_TYPES = (Perturbation, RolloutOutcome, RolloutRecord, FailureMode, FailureReport,
                 CampaignStatus, OperatorPrompt)
STEP_PERIOD = 0.05  # seconds per simulated control step of the echo action server
_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def _topic(msg_type: type, direction: str) -> str:
    return f"{NAMESPACE}/echo/{msg_type.__name__.lower()}/{direction}"


class InterfaceEcho(Node):
    """Echoes each message type and serves every service and the action with predictable answers."""

    def __init__(self) -> None:
        super().__init__("interface_echo", namespace=NAMESPACE)
        group = ReentrantCallbackGroup()
        self._pubs = {}
        for msg_type in MESSAGE_TYPES:
            pub = self.create_publisher(msg_type, _topic(msg_type, "out"), _QOS)
            self._pubs[msg_type] = pub
            self.create_subscription(msg_type, _topic(msg_type, "in"),
                                     lambda msg, p=pub: p.publish(msg), _QOS, callback_group=group)
        self.create_service(ApplyPerturbation, "apply_perturbation", self._apply,
                            callback_group=group)
        self.create_service(ResetScene, "reset_scene", self._reset, callback_group=group)
        self.create_service(JudgeRollout, "judge_rollout", self._judge, callback_group=group)
        self.create_service(OperatorRespond, "operator/respond", self._respond,
                            callback_group=group)
        self._action = ActionServer(
            self, ExecuteRollout, "execute_rollout", self._execute, callback_group=group,
            goal_callback=lambda _goal: GoalResponse.ACCEPT,
            cancel_callback=lambda _handle: CancelResponse.ACCEPT)

    def _apply(self, req: ApplyPerturbation.Request, res: ApplyPerturbation.Response):
        res.status = ApplyPerturbation.Response.STATUS_APPLIED
        res.message = "applied: " + (", ".join(req.perturbations) or "nominal")
        return res

    def _reset(self, req: ResetScene.Request, res: ResetScene.Response):
        res.success = True
        res.message = f"reset with seed {req.seed}"
        return res

    def _judge(self, req: JudgeRollout.Request, res: JudgeRollout.Response):
        res.judged = True
        res.outcome.rollout_id = req.rollout_id
        res.outcome.success = req.rollout_id.endswith("ok")
        res.outcome.confidence = 1.0
        res.outcome.reason = "echo judge: success iff the id ends with 'ok'"
        res.outcome.judge = "echo"
        return res

    def _respond(self, req: OperatorRespond.Request, res: OperatorRespond.Response):
        res.accepted = True
        res.message = f"prompt {req.prompt_id}: response {req.response}"
        return res

    def _execute(self, handle) -> ExecuteRollout.Result:
        goal = handle.request
        result = ExecuteRollout.Result()
        start = time.monotonic()
        for step in range(1, goal.max_steps + 1):
            if handle.is_cancel_requested:
                handle.canceled()
                result.status = ExecuteRollout.Result.STATUS_CANCELLED
                result.reason = "cancelled by the caller"
                break
            time.sleep(STEP_PERIOD)
            feedback = ExecuteRollout.Feedback(step=step, elapsed=time.monotonic() - start)
            handle.publish_feedback(feedback)
            result.steps = step
        else:
            handle.succeed()
            result.status = ExecuteRollout.Result.STATUS_COMPLETED
            result.reason = "step limit"
        result.duration = time.monotonic() - start
        return result


def echo_main(args: list[str] | None = None) -> None:
    """Run the echo node until interrupted."""
    rclpy.init(args=args)
    node = InterfaceEcho()
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def sample_messages() -> list:
    """One populated instance of every message type."""
    pert = Perturbation(name="table_red", text="Change table color to red", kind="color",
                        target="table", value=[1.0, 0.0, 0.0, 1.0])
    mode = FailureMode(rank=1, perturbation=pert, probability=0.31, failure_rate=0.9,
                       failure_rate_low=0.7, failure_rate_high=0.97, trials=20, failures=18)
    return [
        pert,
        RolloutOutcome(rollout_id="r1", success=False, confidence=1.0, reason="cube not lifted",
                       judge="simulator"),
        RolloutRecord(campaign_id="check", key="agent/000001/0", perturbations=[pert], seed=3,
                      status=RolloutRecord.STATUS_COMPLETED, success=False, steps=150,
                      duration=6.5, agent_step=1, reason="step limit"),
        mode,
        FailureReport(campaign_id="check", task="lift", policy="bc", agent="ppo", modes=[mode],
                      entropy=2.1, num_failure_modes=3, failure_severity_index=1.7,
                      rollouts_completed=100, rollouts_aborted=2, served_by=["/robomd/x"]),
        CampaignStatus(campaign_id="check", state=CampaignStatus.STATE_RUNNING, rollouts_done=5,
                       rollouts_budget=100, failures=2, aborted=0,
                       current_perturbations=["table_red"], message="running"),
        OperatorPrompt(prompt_id="p1", kind=OperatorPrompt.KIND_APPLY,
                       instruction="Switch on the red light", perturbations=[pert],
                       timeout_s=60.0),
    ]


class CheckFailed(RuntimeError):
    """An interface did not round-trip."""


def run_check(log: Callable[[str], None] = print, timeout: float = 20.0) -> None:
    """Round-trip every interface against a running ``interface_echo``; raise CheckFailed if not.

    :param log: where to print what was sent and received.
    :param timeout: seconds to wait for each exchange (discovery included).
    """
    rclpy.init()
    node = Node("interface_check", namespace=NAMESPACE)
    try:
        _check_messages(node, log, timeout)
        _check_services(node, log, timeout)
        _check_action(node, log, timeout)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def _spin_until(node: Node, done: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise CheckFailed(f"timed out after {timeout:.0f} s waiting for {what}")
        rclpy.spin_once(node, timeout_sec=0.05)


def _check_messages(node: Node, log: Callable[[str], None], timeout: float) -> None:
    for sent in sample_messages():
        msg_type = type(sent)
        received: list = []
        pub = node.create_publisher(msg_type, _topic(msg_type, "in"), _QOS)
        sub = node.create_subscription(msg_type, _topic(msg_type, "out"), received.append, _QOS)
        # Both directions must be matched before publishing, or the message may be lost.
        _spin_until(node, lambda p=pub, s=sub: p.get_subscription_count() > 0
                    and s.get_publisher_count() > 0, timeout, f"{msg_type.__name__} discovery")
        pub.publish(sent)
        _spin_until(node, lambda r=received: bool(r), timeout, f"{msg_type.__name__} echo")
        if received[0] != sent:
            raise CheckFailed(f"{msg_type.__name__} came back different: {received[0]}")
        log(f"msg  {msg_type.__name__:<16} sent and received identical: {_short(sent)}")
        node.destroy_publisher(pub)
        node.destroy_subscription(sub)


def _call(node: Node, srv_type: type, name: str, request, timeout: float):
    client = node.create_client(srv_type, name)
    if not client.wait_for_service(timeout_sec=timeout):
        raise CheckFailed(f"service {NAMESPACE}/{name} not available after {timeout:.0f} s")
    future = client.call_async(request)
    rclpy.spin_until_future_complete(node, future, timeout_sec=timeout)
    if not future.done():
        raise CheckFailed(f"service {name} did not answer within {timeout:.0f} s")
    node.destroy_client(client)
    return future.result()


def _check_services(node: Node, log: Callable[[str], None], timeout: float) -> None:
    req = ApplyPerturbation.Request(perturbations=["table_red", "light_green"])
    res = _call(node, ApplyPerturbation, "apply_perturbation", req, timeout)
    if res.status != ApplyPerturbation.Response.STATUS_APPLIED or "light_green" not in res.message:
        raise CheckFailed(f"apply_perturbation answered {res}")
    log(f"srv  ApplyPerturbation {list(req.perturbations)} -> status {res.status}, {res.message!r}")
    res = _call(node, ResetScene, "reset_scene", ResetScene.Request(seed=7), timeout)
    if not res.success or "7" not in res.message:
        raise CheckFailed(f"reset_scene answered {res}")
    log(f"srv  ResetScene        seed 7 -> success {res.success}, {res.message!r}")
    res = _call(node, JudgeRollout, "judge_rollout", JudgeRollout.Request(rollout_id="r-ok"),
                timeout)
    if not (res.judged and res.outcome.success and res.outcome.rollout_id == "r-ok"):
        raise CheckFailed(f"judge_rollout answered {res}")
    log(f"srv  JudgeRollout      r-ok -> success {res.outcome.success}, {res.outcome.reason!r}")
    req = OperatorRespond.Request(prompt_id="p1", response=OperatorRespond.Request.RESPONSE_SKIP)
    res = _call(node, OperatorRespond, "operator/respond", req, timeout)
    if not res.accepted:
        raise CheckFailed(f"operator/respond answered {res}")
    log(f"srv  OperatorRespond   p1 SKIP -> accepted {res.accepted}, {res.message!r}")


def _check_action(node: Node, log: Callable[[str], None], timeout: float) -> None:
    client = ActionClient(node, ExecuteRollout, "execute_rollout")
    if not client.wait_for_server(timeout_sec=timeout):
        raise CheckFailed(f"action {NAMESPACE}/execute_rollout not available")
    feedback: list[int] = []

    def send(goal: ExecuteRollout.Goal):
        future = client.send_goal_async(goal, feedback_callback=lambda f: feedback.append(
            f.feedback.step))
        rclpy.spin_until_future_complete(node, future, timeout_sec=timeout)
        handle = future.result()
        if handle is None or not handle.accepted:
            raise CheckFailed("execute_rollout goal was not accepted")
        return handle

    handle = send(ExecuteRollout.Goal(rollout_id="a1", max_steps=5, timeout_s=10.0, seed=1))
    result_future = handle.get_result_async()
    rclpy.spin_until_future_complete(node, result_future, timeout_sec=timeout)
    wrapped = result_future.result()
    if (wrapped is None or wrapped.status != GoalStatus.STATUS_SUCCEEDED
            or wrapped.result.status != ExecuteRollout.Result.STATUS_COMPLETED
            or wrapped.result.steps != 5 or feedback[-1:] != [5]):
        raise CheckFailed(f"execute_rollout result {wrapped} with feedback {feedback}")
    log(f"act  ExecuteRollout    5 steps -> feedback steps {feedback}, result status "
        f"{wrapped.result.status} ({wrapped.result.reason}), {wrapped.result.steps} steps")

    feedback.clear()
    handle = send(ExecuteRollout.Goal(rollout_id="a2", max_steps=10_000, timeout_s=60.0, seed=2))
    _spin_until(node, lambda: len(feedback) >= 2, timeout, "feedback before cancel")
    cancel_future = handle.cancel_goal_async()
    rclpy.spin_until_future_complete(node, cancel_future, timeout_sec=timeout)
    result_future = handle.get_result_async()
    rclpy.spin_until_future_complete(node, result_future, timeout_sec=timeout)
    wrapped = result_future.result()
    if (wrapped is None or wrapped.status != GoalStatus.STATUS_CANCELED
            or wrapped.result.status != ExecuteRollout.Result.STATUS_CANCELLED
            or wrapped.result.steps >= 10_000):
        raise CheckFailed(f"cancelled execute_rollout ended as {wrapped}")
    log(f"act  ExecuteRollout    cancel after {len(feedback)} feedback -> result status "
        f"{wrapped.result.status} ({wrapped.result.reason}) at step {wrapped.result.steps}")
    client.destroy()


def _short(msg) -> str:
    text = str(msg)
    return text if len(text) < 110 else text[:107] + "..."


def start_echo_process() -> subprocess.Popen:
    """Start ``interface_echo`` in its own OS process (same interpreter and environment)."""
    return subprocess.Popen(
        [sys.executable, "-c", "from robomd_diagnoser.ros.interface_check import echo_main; "
         "echo_main()"], env=dict(os.environ))


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """Interrupt a node process and wait for it; kill it if it does not stop."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
