"""Success detector rules: robot state, colour blob, and how they combine."""

from __future__ import annotations

import math

import numpy as np
import pytest

from robomd_ur5e.detector import Detector, RobotEnd, StateRule, Verdict, VisionRule, combine

RULE = StateRule(min_width=0.004, max_width=0.080, min_lift=0.05)


@pytest.mark.parametrize("end, success", [
    (RobotEnd(0.30, 0.10, 0.040, None), True),    # holding, lifted 20 cm
    (RobotEnd(0.30, 0.10, 0.001, None), False),   # closed on nothing
    (RobotEnd(0.30, 0.10, 0.085, None), False),   # open
    (RobotEnd(0.12, 0.10, 0.040, None), False),   # holding but not lifted
    (RobotEnd(0.30, 0.10, math.nan, True), True),  # no gap reading: the object flag decides
    (RobotEnd(0.30, 0.10, math.nan, False), False),
])
def test_state_rule(end: RobotEnd, success: bool) -> None:
    verdict = RULE.judge(end)
    assert verdict.success is success
    assert 0.5 <= verdict.confidence <= 1.0
    assert "TCP" in verdict.reason


def test_state_rule_confidence_grows_with_the_margin_and_unknown_gripper() -> None:
    near = RULE.judge(RobotEnd(0.152, 0.10, 0.040, None))
    far = RULE.judge(RobotEnd(0.30, 0.10, 0.040, None))
    assert near.success and far.success and near.confidence < far.confidence
    unknown = RULE.judge(RobotEnd(0.30, 0.10, math.nan, None))
    assert unknown.success is None and unknown.confidence == 0.0


def _frame(y: int, x: int = 30, size: int = 8, color=(220, 30, 30)) -> np.ndarray:
    image = np.full((64, 64, 3), 200, np.uint8)
    image[y:y + size, x:x + size] = color
    return image


def test_vision_rule_rise_area_and_missing_blob() -> None:
    rule = VisionRule(min_rise_px=5)
    lifted = rule.judge(_frame(40), _frame(20))
    assert lifted.success and "rose 20.0 px" in lifted.reason
    assert rule.judge(_frame(40), _frame(38)).success is False
    assert rule.judge(_frame(40, color=(30, 30, 220)), _frame(20)).success is None
    assert rule.judge(_frame(40), _frame(20, color=(30, 220, 30))).success is None
    area = VisionRule(metric="area", min_area_ratio=1.5)
    assert area.judge(_frame(30, size=8), _frame(30, size=12)).success
    assert area.judge(_frame(30, size=8), _frame(30, size=8)).success is False


def test_vision_rule_hue_wraps_for_red() -> None:
    rule = VisionRule(hsv_low=(170, 120, 60), hsv_high=(10, 255, 255))
    assert rule.blob(_frame(10, color=(220, 20, 60))) is not None  # hue ~ 173
    assert rule.blob(_frame(10, color=(220, 60, 20))) is not None  # hue ~ 5
    assert rule.blob(_frame(10, color=(20, 220, 20))) is None


@pytest.mark.parametrize("mode, state, vision, expected, confidence", [
    ("both", True, True, True, 0.8), ("both", True, False, False, 0.8),
    ("both", True, None, True, 0.4),  # one rule undecided: half as sure
    ("either", False, True, True, 0.8), ("either", False, False, False, 0.8),
    ("either", None, False, False, 0.4), ("both", None, None, None, 0.0),
])
def test_combine(mode: str, state, vision, expected, confidence: float) -> None:
    def v(success) -> Verdict:
        return Verdict(success, 0.0 if success is None else 0.8, "r")

    verdict = combine(mode, v(state), v(vision))
    assert verdict.success is expected
    assert verdict.confidence == pytest.approx(confidence)


def test_detector_modes_and_missing_inputs() -> None:
    end = RobotEnd(0.30, 0.10, 0.040, None)
    assert Detector("state").judge(end).success
    both = Detector("both", vision_rule=VisionRule(min_rise_px=5))
    assert both.judge(end, _frame(40), _frame(20)).success
    assert both.judge(end, _frame(40), _frame(40)).success is False
    assert Detector("vision").judge(None).success is None
    with pytest.raises(ValueError, match="detector mode 'any'"):
        Detector("any")


@pytest.mark.slow
def test_state_rule_agrees_with_the_simulator_on_fake_hardware_rollouts() -> None:
    from robomd_ur5e.agreement import measure

    data = measure(seeds=1)
    state = data["summary"]["state"]
    assert state["decided"] == state["rollouts"] == 16
    assert state["agreement"] >= 0.8
