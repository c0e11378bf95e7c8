"""The console node alone: the token rule beyond localhost (HTTP, websocket, browser) and the
read-only console's refusal to act."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("rclpy")
pytest.importorskip("fastapi")

from console_browser import free_port, start_browser  # noqa: E402

from robomd_diagnoser.console_spec import console_node  # noqa: E402
from robomd_diagnoser.ros.bringup import Graph  # noqa: E402


def _get(url: str, data: dict | None = None, cookie: str = "") -> tuple[int, str]:
    request = urllib.request.Request(
        url, data=None if data is None else json.dumps(data).encode(),
        headers={"Content-Type": "application/json", **({"Cookie": cookie} if cookie else {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as res:
            return res.status, res.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _wait_up(url: str, graph: Graph, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert graph.procs["console"].poll() is None, "the console node exited"
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return  # it answers (403 is an answer)
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not come up")


def _graph(tmp_path: Path, **kwargs) -> Graph:
    spec = console_node(tmp_path, **kwargs)
    return Graph([spec], {"ROS_DOMAIN_ID": os.environ["ROS_DOMAIN_ID"]})


def test_beyond_localhost_every_request_needs_the_token(tmp_path: Path) -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    port = free_port()
    graph = _graph(tmp_path, host="0.0.0.0", port=port, token="s3cret", read_only=False)
    base = f"http://127.0.0.1:{port}"
    browser = None
    try:
        graph.start()
        _wait_up(base + "/", graph)
        assert _get(base + "/")[0] == 403
        assert _get(base + "/?token=wrong")[0] == 403
        assert _get(base + "/static/console.js")[0] == 403
        assert _get(base + "/api/arm", {"armed": False})[0] == 403
        assert _get(base + "/api/respond?token=wrong",
                    {"prompt_id": "p1", "answer": "done"})[0] == 403
        for url in (f"ws://127.0.0.1:{port}/ws", f"ws://127.0.0.1:{port}/ws?token=wrong"):
            with pytest.raises(InvalidStatus) as exc:
                connect(url, open_timeout=10).close()
            assert exc.value.response.status_code == 403
        status, page = _get(base + "/?token=s3cret")
        assert status == 200 and "RoboMD console" in page
        assert _get(base + "/static/console.js", cookie="robomd_console_token=s3cret")[0] == 200
        with connect(f"ws://127.0.0.1:{port}/ws?token=s3cret", open_timeout=10) as ws:
            first = json.loads(ws.recv(timeout=10))
        assert first["type"] == "state" and first["read_only"] is False

        browser = start_browser(tmp_path / "profile")
        browser.get(base + "/?token=wrong")
        assert "403" in browser.find_element("tag name", "body").text
        browser.get(base + "/?token=s3cret")  # the page, then its assets and websocket
        deadline = time.monotonic() + 20
        while browser.find_element("id", "connection").text != "live":
            assert time.monotonic() < deadline, "the page's websocket did not connect"
            time.sleep(0.1)
    finally:
        if browser is not None:
            browser.quit()
        graph.stop()


def test_generated_token_printed_and_read_only_page_without_controls(tmp_path: Path) -> None:
    port = free_port()
    graph = _graph(tmp_path, host="0.0.0.0", port=port, read_only=True)
    spec = graph.specs[0]
    from robomd_diagnoser.ros.bringup import command

    proc = subprocess.Popen(command(spec), env=graph.env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    browser = None
    try:
        line = ""
        deadline = time.monotonic() + 30
        while "console at" not in line:
            assert time.monotonic() < deadline and proc.poll() is None, "no URL printed"
            line = proc.stdout.readline()
        token = re.search(r"\?token=(\S+)", line).group(1)
        assert len(token) >= 16
        base = f"http://127.0.0.1:{port}"
        assert _get(base + "/")[0] == 403
        assert _get(f"{base}/?token={token}")[0] == 200
        # read-only: the buttons' endpoints refuse even with the token
        status, body = _get(f"{base}/api/arm?token={token}", {"armed": True})
        assert status == 403 and "read-only" in body
        status, body = _get(f"{base}/api/respond?token={token}",
                            {"prompt_id": "p1", "answer": "done"})
        assert status == 403 and "read-only" in body
        browser = start_browser(tmp_path / "profile")  # and the page shows no controls
        browser.get(f"{base}/?token={token}")
        deadline = time.monotonic() + 20
        while "read-only" not in (browser.find_element("tag name", "body").get_attribute("class")
                                  or ""):
            assert time.monotonic() < deadline, "the page did not get the read-only state"
            time.sleep(0.1)
        for button in ("btn-done", "btn-skip", "btn-abort", "btn-arm", "btn-disarm"):
            assert not browser.find_element("id", button).is_displayed()
        assert "simulation" in browser.find_element("id", "safety").text
    finally:
        if browser is not None:
            browser.quit()
        proc.send_signal(2)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_localhost_needs_no_token(tmp_path: Path) -> None:
    port = free_port()
    graph = _graph(tmp_path, host="127.0.0.1", port=port, read_only=False)
    try:
        graph.start()
        _wait_up(f"http://127.0.0.1:{port}/", graph)
        assert _get(f"http://127.0.0.1:{port}/")[0] == 200
        status, body = _get(f"http://127.0.0.1:{port}/api/respond",
                            {"prompt_id": "p1", "answer": "maybe"})
        assert status == 422 and "done, skip, abort" in body
    finally:
        graph.stop()
