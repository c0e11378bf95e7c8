"""Success detection for real rollouts, from the robot's state and/or the camera (no ROS here).

State rule (:class:`StateRule`): at the end of the rollout the gripper is closed on something (its
finger gap between ``min_width`` and ``max_width``; where the gripper cannot measure the gap, its
object-detection flag) and the TCP is at least ``min_lift`` above the lowest point it reached
during the rollout (where it grasped).

Vision rule (:class:`VisionRule`): the largest blob of pixels in an HSV range (the object's colour)
either rose in the image by at least ``min_rise_px`` from the start to the end frame (``metric:
rise``, a side camera) or grew to at least ``min_area_ratio`` times its start area (``metric:
area``, a camera above the table that the lifted object gets closer to).

:func:`combine` merges them: ``state``, ``vision``, ``both`` (every rule that can judge must say
success) or ``either`` (one success suffices). A rule that cannot judge (no width and no object
flag; no blob in the start frame) says so; the combined verdict then rests on the other rule with
its confidence halved, or is undecided.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

COMBINE_MODES = ("state", "vision", "both", "either")
VISION_METRICS = ("rise", "area")


@dataclass(frozen=True)
class Verdict:
    """A rule's judgement: ``success`` None means it could not judge."""

    success: bool | None
    confidence: float
    reason: str


@dataclass(frozen=True)
class RobotEnd:
    """The state the state rule reads at the end of a rollout.

    :param tcp_z: TCP height at the end (m, base frame).
    :param lowest_tcp_z: lowest TCP height during the rollout.
    :param gripper_width: finger gap (m), NaN when unknown.
    :param object_detected: the gripper's object flag, None when unknown.
    """

    tcp_z: float
    lowest_tcp_z: float
    gripper_width: float
    object_detected: bool | None


def _confidence(margin: float) -> float:
    """0.5 at the threshold, 1.0 when the measurement is a full threshold away from it."""
    return float(0.5 + 0.5 * min(1.0, abs(margin)))


@dataclass(frozen=True)
class StateRule:
    """Gripper closed on something and TCP lifted (see the module docstring).

    :param min_width: a smaller finger gap (m) means the gripper closed on nothing.
    :param max_width: a larger finger gap (m) means the gripper is open.
    :param min_lift: metres the TCP must end above its lowest point.
    """

    min_width: float = 0.004
    max_width: float = 0.080
    min_lift: float = 0.05

    def __post_init__(self) -> None:
        if not 0 <= self.min_width < self.max_width:
            raise ValueError(f"state rule: need 0 <= min_width < max_width, got "
                             f"{self.min_width}, {self.max_width}")
        if self.min_lift <= 0:
            raise ValueError(f"state rule: min_lift must be > 0 m, got {self.min_lift}")

    def holding(self, gripper_width: float,
                object_detected: bool | None) -> tuple[bool | None, float, str]:
        """Whether the gripper is closed on something: (holding or None when it cannot tell,
        confidence, reason). The finger gap decides when known, else the object flag.

        :param gripper_width: finger gap (m), NaN when unknown.
        :param object_detected: the gripper's object flag, None when unknown.
        """
        if math.isfinite(gripper_width):
            w = gripper_width
            half = (self.max_width - self.min_width) / 2
            hold = self.min_width <= w <= self.max_width
            return (hold, _confidence(min(w - self.min_width, self.max_width - w) / half),
                    f"gripper gap {w * 1000:.0f} mm "
                    f"({'holding' if hold else 'empty' if w < self.min_width else 'open'})")
        if object_detected is not None:
            return (object_detected, 0.9,
                    f"gripper object flag {'set' if object_detected else 'clear'}")
        return None, 0.0, "the gripper reports neither its gap nor object detection"

    def judge(self, end: RobotEnd) -> Verdict:
        """Judge from the end state."""
        lift = end.tcp_z - end.lowest_tcp_z
        lift_ok = lift >= self.min_lift
        lift_conf = _confidence((lift - self.min_lift) / self.min_lift)
        lift_text = (f"TCP {lift * 100:.1f} cm above its lowest point "
                     f"(need {self.min_lift * 100:.1f})")
        hold, hold_conf, hold_text = self.holding(end.gripper_width, end.object_detected)
        if hold is None:
            return Verdict(None, 0.0, f"state rule: {hold_text}")
        reason = f"{hold_text}; {lift_text}"
        if hold and lift_ok:
            return Verdict(True, min(hold_conf, lift_conf), reason)
        failed = [c for ok, c in ((hold, hold_conf), (lift_ok, lift_conf)) if not ok]
        return Verdict(False, max(failed), reason)


@dataclass(frozen=True)
class Blob:
    """The largest connected region in the colour range: centroid (x, y) pixels, area pixels."""

    cx: float
    cy: float
    area: int


@dataclass(frozen=True)
class VisionRule:
    """A colour blob raised in the image (see the module docstring).

    :param hsv_low: lower HSV bound, OpenCV ranges (H 0..179, S and V 0..255). A hue range that
        wraps (red) is given with ``hsv_low[0] > hsv_high[0]``, e.g. 170 .. 10.
    :param hsv_high: upper HSV bound.
    :param metric: ``rise`` or ``area``.
    :param min_rise_px: ``rise``: pixels the centroid must move up.
    :param min_area_ratio: ``area``: end area / start area needed.
    :param min_blob_px: blobs with fewer pixels are noise.
    """

    hsv_low: tuple[int, int, int] = (170, 120, 60)
    hsv_high: tuple[int, int, int] = (10, 255, 255)
    metric: str = "rise"
    min_rise_px: float = 5.0
    min_area_ratio: float = 1.3
    min_blob_px: int = 4

    def __post_init__(self) -> None:
        if self.metric not in VISION_METRICS:
            raise ValueError(f"vision rule: metric {self.metric!r}; use one of {VISION_METRICS}")
        for name in ("hsv_low", "hsv_high"):
            v = getattr(self, name)
            if len(v) != 3 or not (0 <= v[0] <= 179 and 0 <= v[1] <= 255 and 0 <= v[2] <= 255):
                raise ValueError(f"vision rule: {name} must be [H 0..179, S 0..255, V 0..255], "
                                 f"got {list(v)}")
        if self.min_rise_px <= 0 or self.min_area_ratio <= 0:
            raise ValueError("vision rule: min_rise_px and min_area_ratio must be > 0")

    def mask(self, image: np.ndarray) -> np.ndarray:
        """Pixels in the HSV range (uint8 0/255) of an RGB image."""
        import cv2

        hsv = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2HSV)
        lo, hi = np.array(self.hsv_low, np.uint8), np.array(self.hsv_high, np.uint8)
        if lo[0] <= hi[0]:
            return cv2.inRange(hsv, lo, hi)
        upper = cv2.inRange(hsv, lo, np.array([179, hi[1], hi[2]], np.uint8))
        lower = cv2.inRange(hsv, np.array([0, lo[1], lo[2]], np.uint8), hi)
        return cv2.bitwise_or(upper, lower)

    def blob(self, image: np.ndarray) -> Blob | None:
        """The largest blob in the colour range, or None if none is big enough."""
        import cv2

        count, _labels, stats, centroids = cv2.connectedComponentsWithStats(self.mask(image))
        if count <= 1:
            return None
        best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        area = int(stats[best, cv2.CC_STAT_AREA])
        if area < self.min_blob_px:
            return None
        return Blob(float(centroids[best][0]), float(centroids[best][1]), area)

    def judge(self, start: np.ndarray, end: np.ndarray) -> Verdict:
        """Judge from the frames before and after the rollout."""
        b0 = self.blob(start)
        if b0 is None:
            return Verdict(None, 0.0, "vision rule: no object of the configured colour in the "
                                      "start frame")
        b1 = self.blob(end)
        if b1 is None:
            return Verdict(None, 0.0, "vision rule: the object left the view or is hidden in "
                                      "the end frame")
        if self.metric == "rise":
            need = self.min_rise_px
            rise = b0.cy - b1.cy
            return Verdict(rise >= need, _confidence((rise - need) / need),
                           f"object blob rose {rise:.1f} px (need {need:.1f})")
        ratio = b1.area / b0.area
        margin = (ratio - self.min_area_ratio) / self.min_area_ratio
        return Verdict(ratio >= self.min_area_ratio, _confidence(margin),
                       f"object blob area x{ratio:.2f} (need x{self.min_area_ratio:.2f})")


def combine(mode: str, state: Verdict | None, vision: Verdict | None) -> Verdict:
    """Merge the rules' verdicts per ``mode`` (see the module docstring).

    :raises ValueError: for an unknown mode or a missing verdict the mode needs.
    """
    if mode not in COMBINE_MODES:
        raise ValueError(f"combine mode {mode!r}; use one of {', '.join(COMBINE_MODES)}")
    needed = {"state": [state], "vision": [vision]}.get(mode, [state, vision])
    if any(v is None for v in needed):
        raise ValueError(f"combine mode {mode!r} needs the verdict of every rule it uses")
    if len(needed) == 1:
        return needed[0]
    reason = f"{state.reason}; {vision.reason}"
    known = [v for v in (state, vision) if v.success is not None]
    if not known:
        return Verdict(None, 0.0, reason)
    if len(known) == 1:
        only = known[0]
        if (mode == "both" and only.success) or (mode == "either" and not only.success):
            return Verdict(only.success, only.confidence / 2, reason + " (one rule undecided)")
        return Verdict(only.success, only.confidence, reason)
    wins = [v for v in known if v.success]
    losses = [v for v in known if not v.success]
    if mode == "both":
        if losses:
            return Verdict(False, max(v.confidence for v in losses), reason)
        return Verdict(True, min(v.confidence for v in wins), reason)
    if wins:
        return Verdict(True, max(v.confidence for v in wins), reason)
    return Verdict(False, min(v.confidence for v in losses), reason)


@dataclass(frozen=True)
class Detector:
    """The configured success detector.

    :param mode: one of :data:`COMBINE_MODES`.
    :param state_rule: used by ``state``, ``both``, ``either``.
    :param vision_rule: used by ``vision``, ``both``, ``either``.
    """

    mode: str = "state"
    state_rule: StateRule = StateRule()
    vision_rule: VisionRule = VisionRule()

    def __post_init__(self) -> None:
        if self.mode not in COMBINE_MODES:
            raise ValueError(f"detector mode {self.mode!r}; use one of {', '.join(COMBINE_MODES)}")

    @property
    def needs_images(self) -> bool:
        """True if the vision rule takes part."""
        return self.mode != "state"

    def judge(self, end: RobotEnd | None, start_image: np.ndarray | None = None,
              end_image: np.ndarray | None = None) -> Verdict:
        """Judge a rollout from its end state and start/end frames (what the mode needs).

        A missing input makes that rule undecided.
        """
        state = vision = None
        if self.mode != "vision":
            state = (self.state_rule.judge(end) if end is not None
                     else Verdict(None, 0.0, "state rule: no end state from the executor"))
        if self.needs_images:
            vision = (self.vision_rule.judge(start_image, end_image)
                      if start_image is not None and end_image is not None
                      else Verdict(None, 0.0, "vision rule: no start or end frame"))
        return combine(self.mode, state, vision)
