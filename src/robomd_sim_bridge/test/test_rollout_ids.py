"""A goal's rollout_id names the rollout's video file: over DDS, a sim bridge node refuses ids that
would write outside its video_dir, and serves a plain one with the video inside it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy")

from rclpy.action import ActionClient  # noqa: E402

from robomd_diagnoser.ros.bringup import Graph, NodeSpec  # noqa: E402
from robomd_msgs.action import ExecuteRollout  # noqa: E402


def _send(node, client: ActionClient, rollout_id: str):
    """Send a recorded 3-step goal; the goal handle (accepted or not)."""
    goal = ExecuteRollout.Goal(rollout_id=rollout_id, max_steps=3, timeout_s=60.0, seed=1,
                               record_video=True)
    future = client.send_goal_async(goal)  # sent and spun on this thread: no registration race
    rclpy.spin_until_future_complete(node, future, timeout_sec=60.0)
    assert future.done(), f"no answer to the goal {rollout_id!r}"
    return future.result()


def test_rollout_ids_that_leave_the_video_dir_are_refused(tmp_path: Path) -> None:
    videos = tmp_path / "deep" / "videos"
    bridge = NodeSpec("robomd_sim_bridge", "sim_bridge_node", "sim_bridge", parameters={
        "task": "lift", "policy": "expert", "camera_size": 36, "horizon": 20,
        "video_dir": str(videos)})
    graph = Graph([bridge], {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
                             "ROS_DOMAIN_ID": os.environ["ROS_DOMAIN_ID"]})
    rclpy.init()
    node = rclpy.create_node("traversal_client")
    client = ActionClient(node, ExecuteRollout, "/robomd/execute_rollout")
    try:
        graph.start()
        for _ in range(120):
            assert graph.procs["sim_bridge"].poll() is None, "the sim bridge exited"
            if client.wait_for_server(timeout_sec=1.0):
                break
        else:
            pytest.fail("the sim bridge never came up")
        escapes = ["../escape", "../../escape", str(tmp_path / "absolute"), "", ".hidden",
                   "a/b", "x" * 65]
        for rollout_id in escapes:
            assert not _send(node, client, rollout_id).accepted, rollout_id
        handle = _send(node, client, "plain-id_1.0")
        assert handle.accepted
        result_future = handle.get_result_async()
        rclpy.spin_until_future_complete(node, result_future, timeout_sec=120.0)
        result = result_future.result().result
        assert result.status == ExecuteRollout.Result.STATUS_COMPLETED, result.reason
        assert Path(result.video_path) == videos / "plain-id_1.0.mp4"
    finally:
        graph.stop()
        client.destroy()
        node.destroy_node()
        rclpy.try_shutdown()
    written = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert written == [Path("deep/videos/plain-id_1.0.mp4")]
