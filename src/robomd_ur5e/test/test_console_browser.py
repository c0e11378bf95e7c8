"""A fake-hardware dry run driven from the browser console alone, in headless chromium: arm,
answer prompts with Done, see the camera and the previews, then Abort (an aborted rollout, never a
policy failure). Screenshots go to the test's tmp dir (and to $ROBOMD_SCREENSHOT_DIR if set)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("rclpy")
pytest.importorskip("fastapi")

from console_browser import free_port, start_browser  # noqa: E402

from robomd_diagnoser.bringup import Graph  # noqa: E402
from robomd_diagnoser.campaign import STORE_FILE  # noqa: E402
from robomd_diagnoser.config import load_campaign  # noqa: E402
from robomd_diagnoser.console_spec import console_node  # noqa: E402
from robomd_diagnoser.paths import find_config  # noqa: E402
from robomd_diagnoser.store import RolloutStore  # noqa: E402
from robomd_ur5e.bringup import ur5e_campaign_nodes  # noqa: E402


def _wait(what: str, check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _screenshot(browser, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    assert browser.save_screenshot(str(path)) and path.stat().st_size > 10_000
    if os.environ.get("ROBOMD_SCREENSHOT_DIR"):
        shutil.copy(path, Path(os.environ["ROBOMD_SCREENSHOT_DIR"]) / name)
    return path


class PreviewTwin:
    """Publishes preview images for a prompt, as a simulated twin would (operator/preview/*)."""

    def __init__(self) -> None:
        import rclpy
        from sensor_msgs.msg import Image

        from robomd_ur5e.node_util import LATCHED

        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("preview_twin", namespace="/robomd", context=self.context)
        self.pubs = {name: self.node.create_publisher(Image, f"operator/preview/{name}", LATCHED)
                     for name in ("requested", "nominal")}

    def publish(self, prompt_id: str) -> None:
        from robomd_diagnoser.ros.image import to_msg

        for name, rgb in (("requested", (200, 30, 30)), ("nominal", (120, 120, 120))):
            image = np.zeros((84, 84, 3), np.uint8) + np.array(rgb, np.uint8)
            self.pubs[name].publish(to_msg(image, frame_id=prompt_id))

    def close(self) -> None:
        import rclpy

        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def test_dry_run_driven_from_the_browser(tmp_path: Path) -> None:
    campaign = yaml.safe_load(find_config("campaigns/real_lift_dry_run.yaml").read_text())
    campaign.update(budget=3, output=str(tmp_path / "out"),
                    catalog=str(find_config("catalogs/real_lift.yaml")))
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump(campaign))
    port = free_port()
    specs = ur5e_campaign_nodes(load_campaign(path), path, robot_ip="", use_fake_hardware=True)
    specs.append(console_node(tmp_path / "out", port=port, read_only=False))
    for spec in specs:
        if spec.name == "diagnoser":
            spec.parameters["status_period"] = 0.2
    graph = Graph(specs, {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
                          "ROS_DOMAIN_ID": os.environ["ROS_DOMAIN_ID"]})
    browser = twin = None
    try:
        graph.start()
        twin = PreviewTwin()
        browser = start_browser(tmp_path / "profile")
        by_id = lambda i: browser.find_element("id", i)  # noqa: E731

        def load() -> bool:
            try:
                browser.get(f"http://127.0.0.1:{port}/")
                return by_id("connection").text == "live" or _wait(
                    "the websocket", lambda: by_id("connection").text == "live", 10)
            except Exception:  # the console is still starting
                return False

        _wait("the console page", load, 60)
        frames = set()

        def camera_frame() -> str:
            src = by_id("camera").get_attribute("src") or ""
            if src.startswith("data:image/jpeg"):
                frames.add(hashlib.sha1(src.encode()).hexdigest())
            return src

        _wait("a camera frame", camera_frame, 60)

        by_id("btn-arm").click()  # arming asks first
        _wait("the confirmation", lambda: by_id("confirm").is_displayed(), 5)
        by_id("confirm-ok").click()
        _wait("ARMED shown", lambda: "armed" in by_id("safety").get_attribute("class"), 20)
        assert "ARMED" in by_id("safety").text

        def progress() -> tuple[int, int]:
            m = re.match(r"(\d+) / (\d+) rollouts", by_id("progress-text").text)
            return (int(m.group(1)), int(m.group(2))) if m else (0, 0)

        answered: list[tuple[str, str]] = []

        def new_prompt() -> str | None:
            camera_frame()
            pid = by_id("prompt").get_attribute("data-prompt-id")
            return pid if pid and pid not in {p for p, _ in answered} else None

        previewed = False
        while True:
            prompt_id = _wait("a new prompt", new_prompt, 90)
            kind = by_id("prompt").get_attribute("class")
            assert by_id("prompt-text").text, "the prompt shows its instruction"
            if "apply" in kind and not previewed:
                _screenshot(browser, tmp_path, "console_prompt.png")
                twin.publish(prompt_id)
                _wait("the previews", lambda: by_id("previews").is_displayed(), 20)
                assert by_id("preview_requested").get_attribute("src").startswith("data:image")
                assert by_id("preview_nominal").get_attribute("src").startswith("data:image")
                _screenshot(browser, tmp_path, "console_preview.png")
                previewed = True
            done_before = progress()[0]
            if "apply" in kind and done_before >= 2:
                by_id("btn-abort").click()
                _wait("the confirmation", lambda: by_id("confirm").is_displayed(), 5)
                by_id("confirm-ok").click()
                answered.append((prompt_id, "abort"))
                break
            by_id("btn-done").click()
            answered.append((prompt_id, "done"))
            reply = f"done recorded for prompt {prompt_id}"
            _wait("the answer accepted", lambda r=reply: r in by_id("log").text, 20)
            if "apply" in kind:  # a confirmed change: a rollout runs and is counted
                _wait("the campaign going on", lambda n=done_before: progress()[0] > n, 60)

        assert graph.wait("diagnoser", timeout=120) == 0
        _wait("the aborted rollout listed", lambda: "operator aborted" in by_id("aborted").text,
              20)
        _wait("DISARMED after the abort",
              lambda: "disarmed" in by_id("safety").get_attribute("class"), 20)
        assert len(frames) >= 2, "the camera image changed while the arm moved"
        assert by_id("ranking").find_elements("css selector", "tbody tr")
        _screenshot(browser, tmp_path, "console_aborted.png")
    finally:
        if browser is not None:
            browser.quit()
        if twin is not None:
            twin.close()
        graph.stop()
    with RolloutStore(tmp_path / "out" / STORE_FILE) as store:
        records = store.records("agent/")
    aborted = [r for r in records if r.status == "aborted"]
    completed = [r for r in records if r.status == "completed"]
    assert len(completed) >= 2 and all(r.success is not None for r in completed)
    assert aborted and all("operator aborted" in r.reason and r.success is None
                           for r in aborted), [r.reason for r in aborted]
    assert not any(r.failed for r in aborted)
    assert [a for _, a in answered].count("done") >= 3 and answered[-1][1] == "abort"
