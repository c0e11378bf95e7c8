"""The console's state (no ROS): live ranking with intervals, aborted rollouts, ETA, videos."""

from __future__ import annotations

from pathlib import Path

import pytest

from robomd_diagnoser.store import RolloutRecord
from robomd_ur5e.console.state import CAMERA, PREVIEW_REQUESTED, ConsoleState


def _rec(key: str, perts: tuple[str, ...], status: str = "completed",
         success: bool | None = True, reason: str = "") -> RolloutRecord:
    return RolloutRecord(key, perts, 0, status, success, 10, 1.0, reason=reason)


def test_ranking_counts_only_judged_rollouts_and_lists_aborted_ones() -> None:
    state = ConsoleState(read_only=False)
    v0 = state.version
    for i, ok in enumerate([False, False, True]):
        state.add_rollout(_rec(f"a/{i}", ("table_red",), success=ok))
    state.add_rollout(_rec("a/3", ("light_red",), success=True))
    state.add_rollout(_rec("a/4", ("light_red",), "aborted", None, "protective stop"))
    snap = state.snapshot()
    assert snap["version"] > v0
    top, second = snap["ranking"]
    assert (top["set"], top["n"], top["failures"]) == ("table_red", 3, 2)
    assert top["lo"] < 2 / 3 < top["hi"]  # a 95% Wilson interval around the rate
    assert (second["set"], second["n"], second["excluded"], second["rate"]) == (
        "light_red", 1, 1, 0.0)
    assert snap["aborted"] == [{"key": "a/4", "status": "aborted", "reason": "protective stop",
                                "perturbations": ["light_red"]}]


def test_status_gets_judged_count_and_eta() -> None:
    state = ConsoleState(read_only=True)
    state.set_status({"done": 2, "aborted": 1, "budget": 10})
    assert state.snapshot()["status"]["judged"] == 1
    assert state.snapshot()["status"]["eta_s"] is None  # no progress seen yet


def test_previews_change_the_snapshot_camera_frames_do_not() -> None:
    state = ConsoleState(read_only=False)
    v = state.version
    state.set_frame(CAMERA, b"\xff\xd8jpeg")
    assert state.version == v and state.frames()[CAMERA].seq == 1
    state.set_frame(PREVIEW_REQUESTED, b"\xff\xd8jpeg", tag="p3")
    assert state.version > v
    assert state.snapshot()["previews"] == {PREVIEW_REQUESTED: {"seq": 1, "prompt_id": "p3"}}


def test_videos_are_served_from_the_campaign_only(tmp_path: Path) -> None:
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "000001_0.mp4").write_bytes(b"x")
    (tmp_path / "secret.txt").write_text("no")
    state = ConsoleState(read_only=True, output=tmp_path)
    state.add_rollout(_rec("a/1", ()))
    assert state.snapshot()["video"] == "000001_0.mp4"
    assert state.video_path("000001_0.mp4") == tmp_path / "videos" / "000001_0.mp4"
    for name in ("../secret.txt", ".hidden", "missing.mp4"):
        assert state.video_path(name) is None
    assert ConsoleState(read_only=True).video_path("000001_0.mp4") is None


@pytest.mark.parametrize("read_only", [True, False])
def test_snapshot_says_whether_the_console_is_read_only(read_only: bool) -> None:
    assert ConsoleState(read_only).snapshot()["read_only"] is read_only
