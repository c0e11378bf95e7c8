"""The operator prompt node over ROS, answered like the console does; and the console's parser."""

from __future__ import annotations

import os
import threading
import time

import pytest

from robomd_ur5e.cli.operator import parse_answer

rclpy = pytest.importorskip("rclpy")


def test_console_parses_answers_with_notes() -> None:
    assert parse_answer("d") == ("done", "")
    assert parse_answer("S  no red sheet here ") == ("skip", "no red sheet here")
    assert parse_answer("abort") == ("abort", "")
    assert parse_answer("maybe") is None and parse_answer("") is None


def test_prompt_node_done_skip_abort_timeout() -> None:
    from std_srvs.srv import SetBool, Trigger

    from robomd_diagnoser.paths import find_config
    from robomd_diagnoser.ros.bringup import Graph, NodeSpec
    from robomd_diagnoser.ros.node import LATCHED
    from robomd_msgs.msg import OperatorPrompt
    from robomd_msgs.srv import ApplyPerturbation, OperatorRespond, ResetScene

    graph = Graph([NodeSpec("robomd_ur5e", "operator_prompt_node", "operator_prompt",
                            parameters={"catalog": str(find_config("catalogs/real_lift.yaml")),
                                        "timeout_s": 3.0, "home_timeout": 1.0})],
                  {"ROS_DOMAIN_ID": os.environ["ROS_DOMAIN_ID"]})
    rclpy.init()
    node = rclpy.create_node("operator_test", namespace="/robomd")
    prompts: list[OperatorPrompt] = []
    calls: list[str] = []
    node.create_subscription(OperatorPrompt, "operator/prompt", prompts.append, LATCHED)

    def campaign_stop(_req, res):
        calls.append("campaign/stop")
        res.success = True
        return res

    def arm(req, res):
        calls.append(f"executor/arm {req.data}")
        res.success = True
        return res

    node.create_service(Trigger, "campaign/stop", campaign_stop)
    node.create_service(SetBool, "executor/arm", arm)
    apply = node.create_client(ApplyPerturbation, "apply_perturbation")
    reset = node.create_client(ResetScene, "reset_scene")
    respond = node.create_client(OperatorRespond, "operator/respond")
    spinning = True

    def spin() -> None:
        while spinning:
            rclpy.spin_once(node, timeout_sec=0.05)

    spinner = threading.Thread(target=spin, daemon=True)

    def call(client, request):
        future = client.call_async(request)
        deadline = time.monotonic() + 30
        while not future.done():
            assert time.monotonic() < deadline, f"{client.srv_name} did not answer"
            time.sleep(0.02)
        return future.result()

    def answered(client, request, response: int | None):
        """Send ``request``; answer the prompt it raises with ``response`` (None: never)."""
        seen = len([p for p in prompts if p.prompt_id])
        future = client.call_async(request)
        if response is not None:
            deadline = time.monotonic() + 30
            while len([p for p in prompts if p.prompt_id]) == seen:
                assert time.monotonic() < deadline, "no prompt was published"
                time.sleep(0.02)
            prompt = [p for p in prompts if p.prompt_id][-1]
            reply = call(respond, OperatorRespond.Request(prompt_id=prompt.prompt_id,
                                                          response=response, note="test"))
            assert reply.accepted, reply.message
        deadline = time.monotonic() + 30
        while not future.done():
            assert time.monotonic() < deadline, f"{client.srv_name} did not answer"
            time.sleep(0.02)
        return future.result()

    R, A = OperatorRespond.Request, ApplyPerturbation.Response
    try:
        graph.start()
        spinner.start()
        assert apply.wait_for_service(timeout_sec=30)
        done = answered(reset, ResetScene.Request(seed=1), R.RESPONSE_DONE)
        assert done.success
        reset_prompt = [p for p in prompts if p.prompt_id][-1]
        assert reset_prompt.kind == OperatorPrompt.KIND_RESET
        assert "NOT homed" in reset_prompt.instruction  # no executor in this graph

        applied = answered(apply, ApplyPerturbation.Request(perturbations=["object_milk"]),
                           R.RESPONSE_DONE)
        assert applied.status == A.STATUS_APPLIED
        prompt = [p for p in prompts if p.prompt_id][-1]
        assert prompt.kind == OperatorPrompt.KIND_APPLY
        assert [p.object_name for p in prompt.perturbations] == ["milk_carton"]
        assert "white milk carton" in prompt.instruction and prompt.timeout_s == 3.0
        assert prompts[-1].kind == OperatorPrompt.KIND_INFO, "a settled prompt is withdrawn"

        skipped = answered(apply, ApplyPerturbation.Request(perturbations=["object_milk",
                                                                           "light_red"]),
                           R.RESPONSE_SKIP)
        assert skipped.status == A.STATUS_UNAVAILABLE and "test" in skipped.message

        timed_out = answered(apply, ApplyPerturbation.Request(perturbations=["table_red"]), None)
        assert timed_out.status == A.STATUS_ABORTED and "no operator answer" in timed_out.message

        rejected = call(apply, ApplyPerturbation.Request(perturbations=["cube_purple"]))
        assert rejected.status == A.STATUS_REJECTED and "cube_purple" in rejected.message

        assert not calls
        aborted = answered(apply, ApplyPerturbation.Request(perturbations=["table_blue"]),
                           R.RESPONSE_ABORT)
        assert aborted.status == A.STATUS_ABORTED
        assert calls == ["executor/arm False", "campaign/stop"]
        after = call(apply, ApplyPerturbation.Request(perturbations=["light_blue"]))
        assert after.status == A.STATUS_ABORTED
    finally:
        graph.stop()
        spinning = False
        if spinner.is_alive():
            spinner.join()
        node.destroy_node()
        rclpy.try_shutdown()
