"""Campaigns over the ROS 2 graph: sim bridge and diagnoser in separate processes, over DDS."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
import yaml

rclpy = pytest.importorskip("rclpy")

from robomd_diagnoser.campaign import STORE_FILE  # noqa: E402
from robomd_diagnoser.config import load_campaign  # noqa: E402
from robomd_diagnoser.ros.bag import read_bag  # noqa: E402
from robomd_diagnoser.ros.bringup import Graph, sim_campaign_nodes  # noqa: E402
from robomd_diagnoser.store import RolloutStore  # noqa: E402


def _campaign(tmp_path: Path, budget: int) -> Path:
    """A small Lift campaign: scripted expert, tiny images, short horizon, one world."""
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump({
        "name": "ros_test", "task": "lift", "catalog": "catalogs/lift.yaml",
        "world": {"type": "sim", "camera_size": 40, "horizon": 80}, "policy": "expert",
        "agent": {"type": "uniform"}, "budget": budget, "workers": 1,
        "output": str(tmp_path / "out")}))
    return path


def _graph(path: Path, **diagnoser_params) -> Graph:
    specs = sim_campaign_nodes(load_campaign(path), path)
    for spec in specs:
        if spec.name == "diagnoser":
            spec.parameters.update({"status_period": 0.2, "bag_image_every": 1,
                                    **diagnoser_params})
    return Graph(specs, {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
                         "ROS_DOMAIN_ID": os.environ["ROS_DOMAIN_ID"]})


def test_campaign_over_ros_writes_report_and_bag_matching_the_store(tmp_path: Path) -> None:
    path = _campaign(tmp_path, budget=3)
    graph = _graph(path)
    try:
        graph.start()
        assert graph.wait("diagnoser", timeout=240) == 0
    finally:
        graph.stop()
    out = tmp_path / "out"
    html = (out / "report.html").read_text()
    assert "ROS 2" in html and "/robomd/sim_bridge" in html and "/robomd/diagnoser" in html
    with RolloutStore(out / STORE_FILE) as store:
        records = store.records("agent/")
    assert len(records) == 3 and all(r.status == "completed" for r in records)

    bag = read_bag(out / "bag")
    bagged = [m for topic, _t, m in bag if topic == "/robomd/campaign/rollouts"]
    assert [(m.key, [p.name for p in m.perturbations], m.seed, m.success, m.steps)
            for m in bagged] == [(r.key, list(r.perturbations), r.seed, r.success, r.steps)
                                 for r in records]
    images = [m for topic, _t, m in bag if topic == "/robomd/camera/image_raw"]
    assert images and images[0].encoding == "rgb8" and images[0].height == 40
    reports = [m for topic, _t, m in bag if topic == "/robomd/campaign/report"]
    assert len(reports) == 1 and len(reports[0].modes) == 21


def test_bridge_killed_mid_campaign_is_aborted_not_failed_and_campaign_completes(
        tmp_path: Path) -> None:
    from robomd_msgs.action import ExecuteRollout
    from robomd_msgs.msg import CampaignStatus

    path = _campaign(tmp_path, budget=6)
    graph = _graph(path, service_timeout=30.0)
    statuses: list[CampaignStatus] = []
    rclpy.init()
    node = rclpy.create_node("status_listener")
    node.create_subscription(CampaignStatus, "/robomd/campaign/status", statuses.append, 50)
    feedback: list[int] = []  # control steps of rollouts in progress, from the action's feedback
    node.create_subscription(ExecuteRollout.Impl.FeedbackMessage,
                             "/robomd/execute_rollout/_action/feedback",
                             lambda m: feedback.append(m.feedback.step), 100)
    spinning = True

    def spin() -> None:
        while spinning:
            rclpy.spin_once(node, timeout_sec=0.1)

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    try:
        graph.start()
        deadline = time.monotonic() + 180
        while not any(s.rollouts_done >= 2 for s in statuses):
            assert time.monotonic() < deadline, "the campaign made no progress"
            time.sleep(0.05)
        feedback.clear()
        while not feedback:  # kill it mid-rollout
            assert time.monotonic() < deadline, "no rollout started"
            time.sleep(0.005)
        graph.kill("sim_bridge")
        time.sleep(1.0)
        graph.start("sim_bridge")
        assert graph.wait("diagnoser", timeout=240) == 0
    finally:
        graph.stop()
        spinning = False
        spinner.join()
        node.destroy_node()
        rclpy.try_shutdown()
    with RolloutStore(tmp_path / "out" / STORE_FILE) as store:
        records = store.records("agent/")
    aborted = [r for r in records if r.status != "completed"]
    assert aborted, "killing the bridge produced no aborted rollout"
    assert all(r.success is None for r in aborted), "an aborted rollout was judged"
    steps = {r.agent_step for r in records}
    assert steps == set(range(6)), "every agent step of the budget ran"
    faults = [s for s in statuses if s.aborted >= 1]
    assert faults and any("abort" in s.message for s in faults)
    assert statuses[-1].state == CampaignStatus.STATE_DONE
