"""OpenCV frame capture that survives a lost camera (no ROS here).

``source`` is a device index (``"0"``), a video file path or a stream URL (``rtsp://...``,
``http://...``). A device or stream that stops delivering frames is released and reopened with
exponential backoff (``backoff_min`` doubling up to ``backoff_max`` seconds) until it delivers
again; a video file either loops or ends (``loop``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np


class CameraEvent(StrEnum):
    """State changes worth a log line."""

    OPENED = "opened"
    LOST = "lost"
    OPEN_FAILED = "open failed"
    ENDED = "ended"
    LOOPED = "looped"


def parse_source(source: str) -> int | str:
    """A device index for an all-digit string, else the path or URL as given.

    :raises ValueError: for an empty source.
    """
    source = source.strip()
    if not source:
        raise ValueError("parameter source is empty: give a device index (0), a video file or "
                         "a stream URL")
    return int(source) if source.isdigit() else source


def is_file_source(source: int | str) -> bool:
    """True for a path to a file (videos loop or end); False for devices and URLs."""
    return isinstance(source, str) and "://" not in source and Path(source).is_file()


class FrameGrabber:
    """Reads RGB frames from ``source``, reopening it with backoff when it is lost.

    :param source: see :func:`parse_source`.
    :param width: requested frame width (frames of another size are resized to it; 0: as is).
    :param height: requested frame height.
    :param loop: a video file restarts at its end (else :attr:`ended` becomes True).
    :param backoff_min: first reopen delay, seconds.
    :param backoff_max: largest reopen delay, seconds.
    :param on_event: called with (event, detail) on every state change.
    :param opener: builds the capture (``cv2.VideoCapture``; replaceable in tests).
    :param clock: monotonic clock.
    """

    def __init__(self, source: str, width: int = 0, height: int = 0, loop: bool = True,
                 backoff_min: float = 0.5, backoff_max: float = 10.0,
                 on_event: Callable[[CameraEvent, str], None] | None = None,
                 opener: Callable[[int | str], Any] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if width < 0 or height < 0 or (width == 0) != (height == 0):
            raise ValueError(f"width={width}, height={height}: give both (pixels) or both 0")
        if not 0 < backoff_min <= backoff_max:
            raise ValueError(f"backoff_min={backoff_min}, backoff_max={backoff_max}: need "
                             "0 < backoff_min <= backoff_max")
        self.source = parse_source(source)
        self.is_file = is_file_source(self.source)
        self.width, self.height, self.loop = width, height, loop
        self.backoff_min, self.backoff_max = backoff_min, backoff_max
        self.on_event = on_event or (lambda _e, _d: None)
        if opener is None:
            import cv2

            opener = cv2.VideoCapture
        self.opener = opener
        self.clock = clock
        self.ended = False
        self.failures = 0
        self._cap: Any = None
        self._retry_at = 0.0
        self._delay = backoff_min

    @property
    def is_open(self) -> bool:
        """True while the capture is open and delivering."""
        return self._cap is not None

    def _open(self) -> bool:
        import cv2

        cap = self.opener(self.source)
        if cap is None or not cap.isOpened():
            if cap is not None:
                cap.release()
            return False
        if self.width and not self.is_file:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        self._cap = cap
        return True

    def _lose(self, event: CameraEvent, detail: str) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None
        self.failures += 1
        self._retry_at = self.clock() + self._delay
        self.on_event(event, f"{detail}; retrying in {self._delay:.1f} s")
        self._delay = min(self._delay * 2, self.backoff_max)

    def read(self) -> np.ndarray | None:
        """The next frame (HxWx3 uint8 RGB), or None (lost, retrying later, or ended)."""
        import cv2

        if self.ended:
            return None
        if self._cap is None:
            if self.clock() < self._retry_at:
                return None
            if not self._open():
                self._lose(CameraEvent.OPEN_FAILED, f"cannot open camera source {self.source!r}")
                return None
            self._delay = self.backoff_min
            self.on_event(CameraEvent.OPENED, f"camera source {self.source!r} opened")
        ok, frame = self._cap.read()
        if (not ok or frame is None) and self.is_file:
            if not self.loop:
                self.ended = True
                self._cap.release()
                self._cap = None
                self.on_event(CameraEvent.ENDED, f"video {self.source} ended (loop is false)")
                return None
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            self.on_event(CameraEvent.LOOPED, f"video {self.source} restarted")
            ok, frame = self._cap.read()
        if not ok or frame is None:
            self._lose(CameraEvent.LOST, f"camera source {self.source!r} delivered no frame")
            return None
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        if self.width and frame.shape[:2] != (self.height, self.width):
            frame = cv2.resize(frame, (self.width, self.height), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)

    def close(self) -> None:
        """Release the capture."""
        if self._cap is not None:
            self._cap.release()
            self._cap = None
