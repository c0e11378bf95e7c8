"""A fake-hardware dry run driven from the browser console alone, in headless chromium: arm,
see the camera change and the twin's preview of a prompt beside the nominal scene, answer prompts
with Done, see a protective stop, then Abort (an aborted rollout, never a policy failure).
Screenshots go to the test's tmp dir (and to $ROBOMD_SCREENSHOT_DIR if set)."""

from __future__ import annotations

import base64
import hashlib
import os
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("rclpy")
pytest.importorskip("fastapi")

from console_browser import free_port, screenshot, start_browser, wait  # noqa: E402

from robomd_diagnoser.campaign import STORE_FILE  # noqa: E402
from robomd_diagnoser.config import load_campaign  # noqa: E402
from robomd_diagnoser.console_spec import console_node  # noqa: E402
from robomd_diagnoser.paths import find_config  # noqa: E402
from robomd_diagnoser.ros.bringup import Graph  # noqa: E402
from robomd_diagnoser.store import RolloutStore  # noqa: E402
from robomd_ur5e.bringup import preview_twin_node, ur5e_campaign_nodes  # noqa: E402


def _mean_rgb(src: str) -> np.ndarray:
    import cv2

    jpeg = np.frombuffer(base64.b64decode(src.split(",", 1)[1]), np.uint8)
    return cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[:, :, ::-1].reshape(-1, 3).mean(axis=0)


def test_dry_run_driven_from_the_browser(tmp_path: Path) -> None:
    # the real catalog's table covers and lights: the fake scene and the twin both show them
    catalog = yaml.safe_load(find_config("catalogs/real_lift.yaml").read_text())
    catalog["perturbations"] = [p for p in catalog["perturbations"] if p["kind"] != "object"]
    (tmp_path / "catalog.yaml").write_text(yaml.safe_dump(catalog))
    campaign = yaml.safe_load(find_config("campaigns/real_lift_dry_run.yaml").read_text())
    campaign.update(budget=3, output=str(tmp_path / "out"),
                    catalog=str(tmp_path / "catalog.yaml"))
    path = tmp_path / "campaign.yaml"
    path.write_text(yaml.safe_dump(campaign))
    port = free_port()
    specs = ur5e_campaign_nodes(load_campaign(path), path, robot_ip="", use_fake_hardware=True)
    specs += [console_node(tmp_path / "out", port=port, read_only=False),
              preview_twin_node("lift")]
    for spec in specs:
        if spec.name == "policy_executor":  # the 2nd rollout (control steps 81..160) stops
            spec.parameters["fake_faults"] = ["protective_stop@100"]
        if spec.name == "diagnoser":
            spec.parameters["status_period"] = 0.2
    graph = Graph(specs, {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
                          "ROS_DOMAIN_ID": os.environ["ROS_DOMAIN_ID"]})
    browser = None
    try:
        graph.start()
        browser = start_browser(tmp_path / "profile")
        by_id = lambda i: browser.find_element("id", i)  # noqa: E731

        def load() -> bool:
            try:
                browser.get(f"http://127.0.0.1:{port}/")
                return by_id("connection").text == "live" or wait(
                    "the websocket", lambda: by_id("connection").text == "live", 10)
            except Exception:  # the console is still starting
                return False

        wait("the console page", load, 60)
        frames = set()

        def camera_frame() -> bool:
            src = by_id("camera").get_attribute("src") or ""
            if src.startswith("data:image/jpeg"):
                frames.add(hashlib.sha1(src.encode()).hexdigest())
            return bool(frames)

        wait("a camera frame", camera_frame, 60)

        def arm() -> None:
            by_id("btn-arm").click()  # arming asks first
            wait("the confirmation", lambda: by_id("confirm").is_displayed(), 5)
            by_id("confirm-ok").click()
            wait("ARMED shown", lambda: "armed" in by_id("safety").get_attribute("class"), 20)
            assert "ARMED" in by_id("safety").text

        arm()

        def progress() -> tuple[int, int]:
            """(judged, aborted) rollouts as the page shows them."""
            m = re.match(r"(\d+) / \d+ rollouts judged .* (\d+) aborted",
                         by_id("progress-text").text)
            return (int(m.group(1)), int(m.group(2))) if m else (0, 0)

        answered: list[tuple[str, str]] = []
        stopped = False

        def new_prompt() -> str | None:
            camera_frame()
            pid = by_id("prompt").get_attribute("data-prompt-id")
            return pid if pid and pid not in {p for p, _ in answered} else None

        while True:
            prompt_id = wait("a new prompt", new_prompt, 90)
            kind = by_id("prompt").get_attribute("class")
            assert by_id("prompt-text").text, "the prompt shows its instruction"
            if progress()[1] and not stopped:  # the protective stop, until the reset clears it
                wait("PROTECTIVE STOP shown", lambda: "PROTECTIVE STOP" in by_id("safety").text
                     and "pstop" in by_id("safety").get_attribute("class"), 10)
                screenshot(browser, tmp_path, "console_protective_stop.png")
                stopped = True
            if "reset" in kind:  # previews belong to the change prompt they were made for
                assert not by_id("previews").is_displayed()
            if "apply" in kind and not (tmp_path / "console_preview.png").exists():
                wait("the previews", lambda: by_id("previews").is_displayed(), 60)
                requested = _mean_rgb(by_id("preview_requested").get_attribute("src"))
                nominal = _mean_rgb(by_id("preview_nominal").get_attribute("src"))
                assert np.abs(requested - nominal).sum() > 15, (requested, nominal)
                screenshot(browser, tmp_path, "console_preview.png")
            if "apply" in kind and "disarmed" in by_id("safety").get_attribute("class"):
                arm()  # the protective stop disarmed the executor; the reset cleared the stop
            before = progress()
            if "apply" in kind and before[0] >= 2:
                by_id("btn-abort").click()
                wait("the confirmation", lambda: by_id("confirm").is_displayed(), 5)
                by_id("confirm-ok").click()
                answered.append((prompt_id, "abort"))
                break
            by_id("btn-done").click()
            answered.append((prompt_id, "done"))
            reply = f"done recorded for prompt {prompt_id}"
            wait("the answer accepted", lambda r=reply: r in by_id("log").text, 20)
            if "apply" in kind:  # a confirmed change: a rollout runs (judged or aborted)
                wait("the campaign going on", lambda b=before: progress() > b, 60)

        assert graph.wait("diagnoser", timeout=120) == 0
        wait("the aborted rollout listed", lambda: "operator aborted" in by_id("aborted").text,
              20)
        wait("DISARMED after the abort",
              lambda: "disarmed" in by_id("safety").get_attribute("class"), 20)
        assert len(frames) >= 2, "the camera image changed while the arm moved"
        assert by_id("ranking").find_elements("css selector", "tbody tr")
        screenshot(browser, tmp_path, "console_aborted.png")
    finally:
        if browser is not None:
            browser.quit()
        graph.stop()
    with RolloutStore(tmp_path / "out" / STORE_FILE) as store:
        records = store.records("agent/")
    aborted = [r for r in records if r.status == "aborted"]
    completed = [r for r in records if r.status == "completed"]
    assert len(completed) >= 2 and all(r.success is not None for r in completed)
    assert stopped, "the page showed the protective stop"
    assert any("protective stop" in r.reason for r in aborted)
    assert all(r.success is None for r in aborted)
    assert any("operator aborted" in r.reason for r in aborted), [r.reason for r in aborted]
    assert not any(r.failed for r in aborted)
    assert [a for _, a in answered].count("done") >= 3 and answered[-1][1] == "abort"
