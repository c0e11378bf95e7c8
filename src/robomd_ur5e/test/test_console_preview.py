"""The simulated twin renders a prompt's scene and the nominal one; the browser console shows both
beside the prompt (headless chromium). The screenshot goes to $ROBOMD_SCREENSHOT_DIR if set."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("fastapi")

from console_browser import free_port, screenshot, start_browser, wait  # noqa: E402

from robomd_diagnoser.bringup import Graph  # noqa: E402
from robomd_diagnoser.catalog import load_catalog  # noqa: E402
from robomd_diagnoser.console_spec import console_node  # noqa: E402
from robomd_diagnoser.paths import find_config  # noqa: E402
from robomd_diagnoser.ros.convert import perturbation_to_msg  # noqa: E402
from robomd_ur5e.bringup import preview_twin_node  # noqa: E402


def _mean_rgb(src: str) -> np.ndarray:
    import cv2

    jpeg = np.frombuffer(base64.b64decode(src.split(",", 1)[1]), np.uint8)
    return cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[:, :, ::-1].reshape(-1, 3).mean(axis=0)


def test_prompt_preview_rendered_by_the_twin_beside_the_nominal_scene(tmp_path: Path) -> None:
    from robomd_msgs.msg import OperatorPrompt
    from robomd_ur5e.node_util import LATCHED

    port = free_port()
    graph = Graph([preview_twin_node("lift"), console_node(tmp_path, port=port,
                                                           read_only=False)],
                  {"ROS_DOMAIN_ID": os.environ["ROS_DOMAIN_ID"]})
    catalog = load_catalog(find_config("catalogs/real_lift.yaml"))
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("prompt_source", namespace="/robomd", context=context)
    pub = node.create_publisher(OperatorPrompt, "operator/prompt", LATCHED)
    browser = None
    try:
        graph.start()
        names = ["table_red", "object_sprite"]
        pub.publish(OperatorPrompt(
            prompt_id="p7", kind=OperatorPrompt.KIND_APPLY, timeout_s=600.0,
            instruction="Do: " + "; ".join(catalog[n].text for n in names) + ".",
            perturbations=[perturbation_to_msg(catalog[n]) for n in names]))
        browser = start_browser(tmp_path / "profile")
        by_id = lambda i: browser.find_element("id", i)  # noqa: E731

        def page_up() -> bool:
            try:
                browser.get(f"http://127.0.0.1:{port}/")
                return bool(wait("the websocket", lambda: by_id("connection").text == "live", 5))
            except Exception:  # the console is still starting
                return False

        wait("the console page", page_up, 60)
        wait("the prompt", lambda: by_id("prompt").get_attribute("data-prompt-id") == "p7", 30)
        assert not by_id("previews").is_displayed(), "no preview before the twin rendered one"
        wait("the previews", lambda: by_id("previews").is_displayed(), 90)
        requested = _mean_rgb(by_id("preview_requested").get_attribute("src"))
        nominal = _mean_rgb(by_id("preview_nominal").get_attribute("src"))
        # the red table cover shows in the requested scene only (the object swap is not simulated)
        assert requested[0] - requested[1] > nominal[0] - nominal[1] + 20, (requested, nominal)
        screenshot(browser, tmp_path, "console_preview.png")
    finally:
        if browser is not None:
            browser.quit()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
        graph.stop()
