"""The automatic reset on the real-robot graph with fake hardware: the policy executor (the expert
lifts the cube) and the operator prompt node with ``auto_reset: true`` as processes, driven over
ROS 2 like the diagnoser drives them.

After the operator's first reset, digital-only rollouts are reset with no prompt and the cube is
back at its start; the place-back stays inside the envelope; a physical member, a disarmed
executor and a cube that is not where the check expects it all fall back to the operator."""

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
PUSHED = 6  # the rollout in which the cube is slid away before the grasp


def _catalog(tmp_path: Path) -> Path:
    """real_lift.yaml plus a physical family (a dimmable lamp)."""
    data = yaml.safe_load(find_config("catalogs/real_lift.yaml").read_text())
    data["families"].insert(0, {"name": "lamp", "factor": "light_intensity", "values": [0.5]})
    path = tmp_path / "real_lift_lamp.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_digital_only_resets_need_no_operator(tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    executor = {**load_parameters("executor"), **load_parameters("fake_hardware"),
                "robot_ip": "", "use_fake_hardware": True,
                "policy": "module:autoreset_helpers:recording_expert"}
    operator = {**load_parameters("operator"), "catalog": str(_catalog(tmp_path)),
                "fake_scene": True, "timeout_s": 60.0, "home_timeout": 30.0,
                "auto_reset": True}
    env = {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
           "ROS_DOMAIN_ID": os.environ["ROS_DOMAIN_ID"], "ROBOMD_RECORD_DIR": str(seen),
           "ROBOMD_PUSH_ROLLOUT": str(PUSHED),
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    graph = Graph([NodeSpec("robomd_ur5e", "policy_executor_node", "policy_executor",
                            parameters=executor),
                   NodeSpec("robomd_ur5e", "operator_prompt_node", "operator_prompt",
                            parameters=operator)], env)
    rclpy.init()
    node = rclpy.create_node("auto_reset_test", namespace="/robomd")
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
    rollouts = 0

    def wait(future, timeout: float = 180.0):
        rclpy.spin_until_future_complete(node, future, timeout_sec=timeout)
        assert future.done(), "no answer"
        return future.result()

    def rollout() -> None:
        nonlocal rollouts
        rollouts += 1
        handle = wait(action.send_goal_async(ExecuteRollout.Goal(
            rollout_id=f"r{rollouts}", max_steps=80, timeout_s=120.0, seed=0)))
        assert handle.accepted
        result = wait(handle.get_result_async()).result
        assert result.status == ExecuteRollout.Result.STATUS_COMPLETED, result.reason

    def reset_scene() -> str:
        res = wait(reset.call_async(ResetScene.Request(seed=0)))
        assert res.success and "digital perturbations: none" in res.message, res.message
        return res.message

    def applied(name: str) -> None:
        res = wait(apply.call_async(ApplyPerturbation.Request(perturbations=[name])))
        assert res.status == APPLIED, res.message

    def cube(n: int) -> np.ndarray:
        """The cube at the start of rollout ``n`` (recorded by the policy)."""
        return np.load(seen / f"cube_{n}.npy")

    try:
        graph.start()
        for client in (apply, reset, arm, respond):
            assert client.wait_for_service(timeout_sec=120), client.srv_name
        assert action.wait_for_server(timeout_sec=60)
        assert wait(arm.call_async(SetBool.Request(data=True))).success
        reset_scene()
        assert len(prompts) == 1, "the scene at start-up is confirmed by the operator once"
        assert "no operator has confirmed" in prompts[0].instruction

        # (a) digital-only members: no prompt, the cube back at its start after each reset
        for member in ("", "image_brightness_0p3", "image_noise_0p1"):
            if member:
                applied(member)
            rollout()
            assert "automatic reset" in reset_scene()
        rollout()  # records where the third reset left the cube
        assert len(prompts) == 1, [p.instruction for p in prompts[1:]]
        start = cube(1)
        for n in (2, 3, 4):
            assert np.linalg.norm(cube(n)[:2] - start[:2]) < 0.02, (n, cube(n), start)
            assert abs(cube(n)[2] - start[2]) < 0.015, (n, cube(n), start)
            between = np.load(seen / f"between_{n}.npz")
            twists, positions = between["twists"], between["positions"]
            assert len(twists) > 20, "the place-back moved the arm"
            # (c) within the envelope: the place-back speed (below max_speed) and the box
            assert np.max(np.linalg.norm(twists[:, :3], axis=1)) <= \
                min(executor["place_speed"], executor["max_speed"]) + 1e-9
            assert np.all(positions >= np.array(executor["workspace_min"]) - 1e-3)
            assert np.all(positions <= np.array(executor["workspace_max"]) + 1e-3)
        assert "4 automatic, 1 by the operator" in reset_scene()

        # (b) a physical member: the operator is prompted to apply and to reset
        applied("lamp_0p5")
        rollout()
        reset_scene()
        assert [p.kind for p in prompts[1:]] == [OperatorPrompt.KIND_APPLY,
                                                OperatorPrompt.KIND_RESET]
        assert "physical changes ['lamp_0p5']" in prompts[-1].instruction

        # (d) the cube was slid away before the grasp: the check fails, the operator resets
        assert rollouts + 1 == PUSHED
        rollout()
        reset_scene()
        assert len(prompts) == 4 and prompts[-1].kind == OperatorPrompt.KIND_RESET
        assert "scene check: the object is" in prompts[-1].instruction, prompts[-1].instruction

        # (c) disarmed: the place-back is refused, nothing moves, the operator resets
        rollout()
        assert wait(arm.call_async(SetBool.Request(data=False))).success
        reset_scene()
        assert len(prompts) == 5 and "disarmed" in prompts[-1].instruction
        assert wait(arm.call_async(SetBool.Request(data=True))).success
        rollout()
        between = np.load(seen / f"between_{rollouts}.npz")
        assert len(between["twists"]) == 0, "a disarmed executor moved the arm"
    finally:
        graph.stop()
        node.destroy_node()
        rclpy.try_shutdown()
