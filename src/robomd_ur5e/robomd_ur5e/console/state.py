"""What the browser console shows, gathered from the graph's topics (no ROS here).

The console node converts messages to plain values and hands them to :class:`ConsoleState`; the
web app reads :meth:`ConsoleState.snapshot` (JSON) and the latest frames. Every change to the
snapshot bumps :attr:`ConsoleState.version`; every new frame bumps that frame's ``seq``.
"""

from __future__ import annotations

import base64
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robomd_diagnoser.progress import EtaClock
from robomd_diagnoser.stats import failure_rates
from robomd_diagnoser.store import RolloutRecord
from robomd_diagnoser.world import RolloutStatus

#: Frame names: the camera, and a preview of the requested and of the nominal scene.
CAMERA, PREVIEW_REQUESTED, PREVIEW_NOMINAL = "camera", "preview_requested", "preview_nominal"
_KEEP = 20  # aborted rollouts, verdicts and log lines kept for the page


@dataclass(frozen=True)
class Frame:
    """One encoded image.

    :param seq: increases with every new frame of that name.
    :param data: the JPEG, base64 (what the page puts in a data: URL).
    :param tag: what it belongs to (a preview's prompt id; '' for the camera).
    """

    seq: int
    data: str
    tag: str = ""


class ConsoleState:
    """The console's view of the campaign (thread-safe).

    :param read_only: no operator controls (a simulated campaign).
    :param output: the campaign directory (rollout videos in ``<output>/videos``), if known.
    """

    def __init__(self, read_only: bool, output: Path | None = None) -> None:
        self.read_only = read_only
        self.videos = Path(output) / "videos" if output else None
        self.version = 0
        self._lock = threading.Lock()
        self._frames: dict[str, Frame] = {}
        self._eta = EtaClock()
        self._records: list[RolloutRecord] = []
        self._data: dict[str, Any] = {
            "read_only": read_only, "prompt": None, "executor": None, "status": None,
            "report": None, "ranking": [], "aborted": [], "outcomes": [], "video": None,
            "log": []}

    # ------------------------------------------------------------------ frames
    def set_frame(self, name: str, jpeg: bytes, tag: str = "") -> None:
        """A new encoded frame called ``name`` (a preview also changes the snapshot)."""
        with self._lock:
            old = self._frames.get(name)
            self._frames[name] = Frame(old.seq + 1 if old else 1,
                                       base64.b64encode(jpeg).decode("ascii"), tag)
            if name != CAMERA:
                self.version += 1

    def frames(self) -> dict[str, Frame]:
        """The latest frame of every name."""
        with self._lock:
            return dict(self._frames)

    # ------------------------------------------------------------------ snapshot parts
    def _set(self, key: str, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self.version += 1

    def set_prompt(self, prompt: dict[str, Any] | None) -> None:
        """The pending prompt (``id``, ``kind``, ``instruction``, ``perturbations``, ...) or
        None when nothing is asked."""
        self._set("prompt", prompt)

    def set_executor(self, executor: dict[str, Any]) -> None:
        """The executor's ``armed``, ``busy``, ``protective_stop``, ``emergency_stop``,
        ``fault``."""
        self._set("executor", executor)

    def set_status(self, status: dict[str, Any]) -> None:
        """Campaign progress (``done``, ``aborted``, ``budget``, ...); ``judged`` (done less
        aborted attempts, which are retried) and its ETA against the budget are added here."""
        judged = int(status["done"]) - int(status["aborted"])
        self._set("status", {**status, "judged": judged,
                             "eta_s": self._eta.eta(judged, int(status["budget"]))})

    def set_report(self, report: dict[str, Any]) -> None:
        """The final ranking (``rows`` with P_fail, rate and interval) from campaign/report."""
        self._set("report", report)

    def add_rollout(self, record: RolloutRecord) -> None:
        """A finished rollout: updates the live ranking, the aborted list and the video."""
        with self._lock:
            self._records.append(record)
            rows = []
            for fr in failure_rates(self._records).values():
                rows.append({"set": " + ".join(fr.perturbations) or "nominal", "n": fr.n,
                             "failures": fr.failures, "excluded": fr.excluded, "rate": fr.rate,
                             "lo": fr.lo, "hi": fr.hi})
            rows.sort(key=lambda r: (r["rate"] is None, -(r["rate"] or 0.0), -r["hi"]))
            self._data["ranking"] = rows
            if record.status != RolloutStatus.COMPLETED.value:
                aborted = self._data["aborted"]
                aborted.append({"key": record.key, "status": record.status,
                                "reason": record.reason,
                                "perturbations": list(record.perturbations)})
                del aborted[:-_KEEP]
            self._data["video"] = self._latest_video()
            self.version += 1

    def add_outcome(self, outcome: dict[str, Any]) -> None:
        """A judged rollout (``rollout_id``, ``success``, ``judge``, ``confidence``,
        ``reason``)."""
        with self._lock:
            self._data["outcomes"] = [*self._data["outcomes"], outcome][-_KEEP:]
            self.version += 1

    def log(self, text: str) -> None:
        """A line for the page's event log (answers sent and their replies)."""
        with self._lock:
            entry = {"time": time.strftime("%H:%M:%S"), "text": text}
            self._data["log"] = [*self._data["log"], entry][-_KEEP:]
            self.version += 1

    def snapshot(self) -> dict[str, Any]:
        """Everything the page shows but the frames, JSON-ready."""
        with self._lock:
            previews = {name: {"seq": f.seq, "prompt_id": f.tag}
                        for name, f in self._frames.items() if name != CAMERA}
            return {**self._data, "previews": previews, "version": self.version}

    # ------------------------------------------------------------------ videos
    def _latest_video(self) -> str | None:
        if self.videos is None or not self.videos.is_dir():
            return None
        files = [p for p in self.videos.iterdir() if p.suffix in (".mp4", ".webm")]
        return max(files, key=lambda p: p.stat().st_mtime).name if files else None

    def video_path(self, name: str) -> Path | None:
        """The campaign video called ``name`` (a file directly in ``<output>/videos``)."""
        if self.videos is None or "/" in name or name.startswith("."):
            return None
        path = self.videos / name
        return path if path.is_file() else None
