"""Digital perturbations on the real-robot graph with fake hardware: the policy executor and the
operator prompt node as processes, driven over ROS 2 like the diagnoser drives them.

A digital-only member raises no operator prompt and reaches the policy's image; a mixed member
prompts for its physical part only; a reset leaves nothing applied."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import yaml

rclpy = pytest.importorskip("rclpy")

from rclpy.action import ActionClient  # noqa: E402
from std_srvs.srv import SetBool  # noqa: E402

from robomd_diagnoser.paths import find_config  # noqa: E402
from robomd_diagnoser.ros.bringup import Graph, NodeSpec  # noqa: E402
from robomd_diagnoser.ros.node import LATCHED  # noqa: E402
from robomd_msgs.action import ExecuteRollout  # noqa: E402
from robomd_msgs.msg import OperatorPrompt  # noqa: E402
from robomd_msgs.srv import ApplyPerturbation, OperatorRespond, ResetScene  # noqa: E402
from robomd_ur5e.bringup import load_parameters  # noqa: E402

HERE = Path(__file__).resolve().parent
APPLIED = ApplyPerturbation.Response.STATUS_APPLIED


def _catalog(tmp_path: Path) -> Path:
    """real_lift.yaml plus a physical family (a dimmable lamp) that combines with the digital
    ones, so the space has mixed members."""
    data = yaml.safe_load(find_config("catalogs/real_lift.yaml").read_text())
    data["families"].insert(0, {"name": "lamp", "factor": "light_intensity", "values": [0.5]})
    path = tmp_path / "real_lift_lamp.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_digital_members_reach_the_policy_without_the_operator(tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    executor = {**load_parameters("executor"), **load_parameters("fake_hardware"),
                "robot_ip": "", "use_fake_hardware": True,
                "policy": "module:digital_helpers:recording_policy"}
    operator = {**load_parameters("operator"), "catalog": str(_catalog(tmp_path)),
                "fake_scene": True, "timeout_s": 60.0, "home_timeout": 30.0}
    env = {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
           "ROS_DOMAIN_ID": os.environ["ROS_DOMAIN_ID"], "ROBOMD_RECORD_DIR": str(seen),
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    graph = Graph([NodeSpec("robomd_ur5e", "policy_executor_node", "policy_executor",
                            parameters=executor),
                   NodeSpec("robomd_ur5e", "operator_prompt_node", "operator_prompt",
                            parameters=operator)], env)
    rclpy.init()
    node = rclpy.create_node("digital_test", namespace="/robomd")
    prompts: list[OperatorPrompt] = []
    respond = node.create_client(OperatorRespond, "operator/respond")

    def answer(msg: OperatorPrompt) -> None:  # the operator: done, to every prompt
        if msg.prompt_id:
            prompts.append(msg)
            respond.call_async(OperatorRespond.Request(
                prompt_id=msg.prompt_id, response=OperatorRespond.Request.RESPONSE_DONE))

    node.create_subscription(OperatorPrompt, "operator/prompt", answer, LATCHED)
    apply = node.create_client(ApplyPerturbation, "apply_perturbation")
    reset = node.create_client(ResetScene, "reset_scene")
    arm = node.create_client(SetBool, "executor/arm")
    action = ActionClient(node, ExecuteRollout, "execute_rollout")

    def wait(future, timeout: float = 120.0):
        rclpy.spin_until_future_complete(node, future, timeout_sec=timeout)
        assert future.done(), "no answer"
        return future.result()

    def rollout(n: int) -> np.ndarray:
        """Run rollout ``n`` (seed 3); the first image the policy saw, as ints."""
        handle = wait(action.send_goal_async(ExecuteRollout.Goal(
            rollout_id=f"r{n}", max_steps=3, timeout_s=60.0, seed=3)))
        assert handle.accepted
        result = wait(handle.get_result_async()).result
        assert result.status == ExecuteRollout.Result.STATUS_COMPLETED, result.reason
        return np.load(seen / f"rollout_{n}.npy").astype(int)

    def reset_scene() -> None:
        res = wait(reset.call_async(ResetScene.Request(seed=0)))
        assert res.success and "digital perturbations: none" in res.message, res.message

    try:
        graph.start()
        for client in (apply, reset, arm, respond):
            assert client.wait_for_service(timeout_sec=120), client.srv_name
        assert action.wait_for_server(timeout_sec=60)
        assert wait(arm.call_async(SetBool.Request(data=True))).success
        reset_scene()
        nominal = rollout(1)

        reset_scene()
        asked = len(prompts)
        res = wait(apply.call_async(ApplyPerturbation.Request(
            perturbations=["image_brightness_0p3"])))
        assert res.status == APPLIED and "image_brightness 0.3" in res.message, res.message
        assert len(prompts) == asked, "a digital-only member raised an operator prompt"
        brighter = rollout(2)
        room = nominal <= 255 - 77  # +0.3 of full scale: +76.5, rounded; brighter ones saturate
        assert room.mean() > 0.2 and np.isin(brighter[room] - nominal[room], (76, 77)).all()
        assert (brighter[~room] == 255).all()

        reset_scene()
        asked = len(prompts)
        res = wait(apply.call_async(ApplyPerturbation.Request(
            perturbations=["lamp_0p5+image_noise_0p1"])))
        assert res.status == APPLIED and "image_noise 0.1" in res.message, res.message
        assert len(prompts) == asked + 1
        prompt = prompts[-1]
        assert prompt.kind == OperatorPrompt.KIND_APPLY
        assert [p.name for p in prompt.perturbations] == ["lamp_0p5"]
        assert "light intensity" in prompt.instruction and "noise" not in prompt.instruction
        noisy = rollout(3)
        diff = (noisy - nominal)[(nominal > 60) & (nominal < 195)]  # away from the clip
        assert 20 < diff.std() < 31 and abs(diff.mean()) < 3, (diff.std(), diff.mean())

        reset_scene()
        assert np.array_equal(rollout(4), nominal), "the reset left a digital level applied"
    finally:
        graph.stop()
        node.destroy_node()
        rclpy.try_shutdown()
