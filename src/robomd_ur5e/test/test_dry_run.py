"""The real-robot graph end to end on fake hardware: camera-less simulated UR5e, executor,
detector, operator prompt, diagnoser and ``robomd operator --auto done --arm``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

pytest.importorskip("rclpy")

from robomd_diagnoser.campaign import RESULT_FILE, STORE_FILE  # noqa: E402
from robomd_diagnoser.config import load_campaign  # noqa: E402
from robomd_diagnoser.paths import find_config  # noqa: E402
from robomd_diagnoser.ros.bringup import Graph  # noqa: E402
from robomd_diagnoser.store import RolloutStore  # noqa: E402
from robomd_ur5e.bringup import ur5e_campaign_nodes  # noqa: E402


def test_dry_run_campaign_on_fake_hardware_with_a_protective_stop(tmp_path: Path) -> None:
    campaign = yaml.safe_load(find_config("campaigns/real_lift_dry_run.yaml").read_text())
    campaign.update(budget=3, output=str(tmp_path / "out"),
                    catalog=str(find_config("catalogs/real_lift.yaml")))
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump(campaign))
    specs = ur5e_campaign_nodes(load_campaign(path), path, robot_ip="", use_fake_hardware=True)
    assert "camera" not in {s.name for s in specs}, "the fake executor renders the camera"
    for spec in specs:
        if spec.name == "policy_executor":  # the 2nd rollout (control steps 81..160) stops
            spec.parameters["fake_faults"] = ["protective_stop@100"]
        if spec.name == "diagnoser":
            spec.parameters["status_period"] = 0.2
    env = {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
           "ROS_DOMAIN_ID": os.environ["ROS_DOMAIN_ID"]}
    graph = Graph(specs, env)
    console = None
    try:
        graph.start()
        console = subprocess.Popen(
            [shutil.which("robomd"), "operator", "--auto", "done", "--arm", "--exit-when-done"],
            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True)
        assert graph.wait("diagnoser", timeout=240) == 0
        output, _ = console.communicate(timeout=60)
    finally:
        if console is not None and console.poll() is None:
            console.kill()
        graph.stop()
    out = tmp_path / "out"
    assert (out / "report.html").is_file()
    html = (out / "report.html").read_text()
    assert "/robomd/policy_executor" in html
    physical = json.loads((out / RESULT_FILE).read_text())["physical"]
    assert physical["object_milk"] is True and physical["image_noise_0p02"] is False
    assert physical["image_noise_0p02+image_blur_2"] is False and len(physical) == 87
    assert "executor (digital)" in html and "operator (physical)" in html
    with RolloutStore(out / STORE_FILE) as store:
        records = store.records("agent/")
    aborted = [r for r in records if r.status == "aborted"]
    completed = [r for r in records if r.status == "completed"]
    assert aborted and all("protective stop" in r.reason and r.success is None for r in aborted)
    assert all("arm again" in r.reason for r in aborted), "the stop disarmed the executor"
    assert output.count("executor: ARMED") >= 2, "the console re-armed it after the reset"
    assert len(completed) >= 2 and all(r.success is not None for r in completed)
    assert "CHANGE THE SCENE" in output and "-> done: done recorded" in output
    assert "by detector" in output, "the console shows the detector's verdicts"
