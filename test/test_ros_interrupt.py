"""Ctrl-C and the campaign directory over a real `robomd bringup` (sim bridge + diagnoser over DDS).

A Ctrl-C mid-rollout stops every node without a traceback and leaves a closed bag; a second
bringup into the running campaign's directory is refused without touching its bag; rerunning the
command resumes, and every rollout is stored and bagged exactly once across the bag's parts.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

rclpy = pytest.importorskip("rclpy")

from robomd_diagnoser.campaign import STORE_FILE  # noqa: E402
from robomd_diagnoser.config import load_campaign  # noqa: E402
from robomd_diagnoser.ros.bag import ROLLOUTS_TOPIC, bag_parts, read_bag  # noqa: E402
from robomd_diagnoser.ros.bringup import Graph, sim_campaign_nodes  # noqa: E402
from robomd_diagnoser.store import RolloutStore  # noqa: E402

# Enough rollouts that the campaign cannot finish before the pause below reaches it: on a quiet
# machine an expert rollout takes about 1.5 s, and with 3 the whole campaign sometimes ended first.
BUDGET = 12


def _campaign(tmp_path: Path) -> Path:
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump({
        "name": "interrupt_test", "task": "lift", "catalog": "catalogs/lift.yaml",
        "world": {"type": "sim", "camera_size": 36, "horizon": 80}, "policy": "expert",
        "agent": {"type": "uniform"}, "budget": BUDGET, "workers": 1,
        "output": str(tmp_path / "out")}))
    return path


def _bringup(path: Path, log: Path) -> subprocess.Popen:
    """`robomd bringup` in a session of its own, as a terminal would run it."""
    return subprocess.Popen([shutil.which("robomd"), "bringup", str(path), "--domain-id",
                             os.environ["ROS_DOMAIN_ID"]], stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)


class _Listener:
    """Counts campaign/status and rollout feedback in the test process."""

    def __init__(self) -> None:
        from robomd_msgs.action import ExecuteRollout
        from robomd_msgs.msg import CampaignStatus

        self.done = 0
        self.feedback = 0
        self.node = rclpy.create_node("interrupt_listener")
        self.node.create_subscription(CampaignStatus, "/robomd/campaign/status",
                                      lambda m: setattr(self, "done", m.rollouts_done), 50)
        self.node.create_subscription(ExecuteRollout.Impl.FeedbackMessage,
                                      "/robomd/execute_rollout/_action/feedback",
                                      lambda _m: setattr(self, "feedback", self.feedback + 1),
                                      100)
        from std_srvs.srv import Trigger

        self._trigger = {name: self.node.create_client(Trigger, f"/robomd/campaign/{name}")
                         for name in ("pause", "resume")}
        self._spinning = True
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self._spinning:
            rclpy.spin_once(self.node, timeout_sec=0.1)

    def call(self, name: str) -> None:
        """Call campaign/pause or campaign/resume."""
        from std_srvs.srv import Trigger

        client = self._trigger[name]
        assert client.wait_for_service(timeout_sec=30.0), name
        future = client.call_async(Trigger.Request())
        deadline = time.monotonic() + 30.0
        self.wait(f"no answer from campaign/{name}", future.done, deadline)
        assert future.result().success, name

    def wait(self, what: str, condition, deadline: float) -> None:
        while not condition():
            assert time.monotonic() < deadline, what
            time.sleep(0.01)

    def close(self) -> None:
        self._spinning = False
        self._thread.join()
        self.node.destroy_node()


def test_ctrl_c_mid_rollout_then_rerun_keeps_every_rollout_once(tmp_path: Path) -> None:
    path = _campaign(tmp_path)
    out = tmp_path / "out"
    rclpy.init()
    listener = _Listener()
    first = _bringup(path, tmp_path / "first.log")
    try:
        deadline = time.monotonic() + 120
        listener.wait("no rollout was stored", lambda: listener.done >= 1, deadline)
        listener.call("pause")  # after the rollout in flight: the campaign waits for the checks
        bag_inode = (out / "bag").stat().st_ino

        # a second campaign into the running one's directory: refused before it touches the bag
        diagnoser = [s for s in sim_campaign_nodes(load_campaign(path), path)
                     if s.name == "diagnoser"]
        second = Graph(diagnoser, {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
                                   "ROS_DOMAIN_ID": os.environ["ROS_DOMAIN_ID"]})
        second.start()
        again = _bringup(path, tmp_path / "again.log")
        assert second.wait("diagnoser", timeout=60) == 2
        assert again.wait(60) == 2
        assert "another campaign is running" in (tmp_path / "again.log").read_text()
        assert [p.name for p in bag_parts(out)] == ["bag"]
        assert (out / "bag").stat().st_ino == bag_inode

        seen = listener.feedback
        listener.call("resume")
        deadline = time.monotonic() + 120  # the refused starts above may take up to 2 x 60 s
        listener.wait("no rollout in progress", lambda: listener.feedback > seen + 2, deadline)
        os.killpg(first.pid, signal.SIGINT)  # Ctrl-C in the terminal: the whole group
        assert first.wait(60) == 130
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        listener.close()
        rclpy.try_shutdown()
    log = (tmp_path / "first.log").read_text()
    assert "Traceback" not in log and "RCLError" not in log, log
    with RolloutStore(out / STORE_FILE) as store:
        interrupted = store.records("agent/")
    assert 1 <= len(interrupted) < BUDGET
    first_bag = read_bag(out / "bag")
    bagged = [m.key for topic, _t, m in first_bag if topic == ROLLOUTS_TOPIC]
    statuses = [m for topic, _t, m in first_bag if topic == "/robomd/campaign/status"]
    assert statuses[-1].message == "interrupted; rerun the same command to resume"
    assert bagged == [r.key for r in interrupted]  # closed and complete: readable end to end

    rerun = _bringup(path, tmp_path / "rerun.log")
    assert rerun.wait(240) == 0, (tmp_path / "rerun.log").read_text()
    assert "Traceback" not in (tmp_path / "rerun.log").read_text()
    with RolloutStore(out / STORE_FILE) as store:
        records = store.records("agent/")
    assert [r.agent_step for r in records] == list(range(BUDGET))
    assert all(r.status == "completed" for r in records)
    assert [r for r in records if r.key in bagged] == interrupted  # kept, not run again
    assert [p.name for p in bag_parts(out)] == ["bag", "bag.1"]
    messages = read_bag(out)
    assert sorted(m.key for topic, _t, m in messages if topic == ROLLOUTS_TOPIC) == sorted(
        r.key for r in records)
    assert sum(topic == "/robomd/campaign/report" for topic, _t, _m in messages) == 1
    assert (out / "report.html").is_file()
