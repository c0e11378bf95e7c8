"""The safety envelope: what reaches speedL whatever the policy outputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from robomd_ur5e.safety import (
    ActionMapper,
    NonFiniteAction,
    SafetyEnvelope,
    SafetyLimits,
    SafetyStop,
)

LIMITS = SafetyLimits(workspace_min=(-0.5, -0.5, 0.0), workspace_max=(0.5, 0.5, 0.5),
                      max_speed=0.25, max_accel=1.0, max_rot_speed=1.0, max_rot_accel=4.0)
PERIOD = 0.05


def test_out_of_range_actions_are_clipped_then_scaled() -> None:
    mapper = ActionMapper(pos_scale=0.05, rot_scale=0.5, period=PERIOD)
    mapped = mapper.map([5.0, -3.0, 0.5, 0.0, 0.0, 2.0, 7.0])
    assert mapped.clipped
    np.testing.assert_allclose(mapped.twist, [1.0, -1.0, 0.5, 0.0, 0.0, 10.0])
    assert mapped.close_gripper
    assert not mapper.map([0, 0, 0, 0, 0, 0, -1]).close_gripper


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_actions_raise(bad: float) -> None:
    mapper = ActionMapper(0.05, 0.5, PERIOD)
    with pytest.raises(NonFiniteAction, match="non-finite"):
        mapper.map([0, 0, bad, 0, 0, 0, 0])
    with pytest.raises(NonFiniteAction):
        SafetyEnvelope(LIMITS).limit([0, 0, 0.2, 0, 0, 0], np.array([bad, 0, 0, 0, 0, 0]),
                                     np.zeros(6), PERIOD)


def test_wrong_action_size_stops() -> None:
    with pytest.raises(SafetyStop, match="returned 3 action values"):
        ActionMapper(0.05, 0.5, PERIOD).map([0, 0, 0])


def test_action_frame_rotates_deltas_into_the_base_frame() -> None:
    mapper = ActionMapper(0.05, 0.5, PERIOD, frame_rpy=(0.0, 0.0, math.pi / 2))
    np.testing.assert_allclose(mapper.map([1, 0, 0, 0, 0, 0, 0]).twist[:3], [0, 1, 0],
                               atol=1e-12)


def test_speed_and_acceleration_are_capped() -> None:
    env = SafetyEnvelope(LIMITS)
    pose = [0, 0, 0.25, 0, 0, 0]
    first = env.limit(pose, np.array([10.0, 0, 0, 0, 0, 50.0]), np.zeros(6), PERIOD)
    assert np.linalg.norm(first[:3]) == pytest.approx(LIMITS.max_accel * PERIOD)
    assert np.linalg.norm(first[3:]) == pytest.approx(LIMITS.max_rot_accel * PERIOD)
    twist = first
    for _ in range(100):
        previous, twist = twist, env.limit(pose, np.array([10.0, 0, 0, 0, 0, 50.0]), twist,
                                           PERIOD)
        assert np.linalg.norm(twist[:3] - previous[:3]) <= LIMITS.max_accel * PERIOD + 1e-12
    assert np.linalg.norm(twist[:3]) == pytest.approx(LIMITS.max_speed)
    assert np.linalg.norm(twist[3:]) == pytest.approx(LIMITS.max_rot_speed)


def test_the_tcp_never_leaves_the_box_whatever_is_asked() -> None:
    env = SafetyEnvelope(LIMITS)
    rng = np.random.default_rng(0)
    pos = np.array([0.0, 0.0, 0.25])
    twist = np.zeros(6)
    for _ in range(3000):
        wanted = rng.uniform(-5, 5, 6)
        twist = env.limit([*pos, 0, 0, 0], wanted, twist, PERIOD)
        pos = pos + twist[:3] * PERIOD
        assert np.all(pos >= np.array(LIMITS.workspace_min) - 1e-9)
        assert np.all(pos <= np.array(LIMITS.workspace_max) + 1e-9)


def test_the_arm_brakes_before_a_face_and_may_leave_it() -> None:
    env = SafetyEnvelope(LIMITS)
    near_top = [0, 0, 0.499, 0, 0, 0]
    up = env.limit(near_top, np.array([0, 0, 1.0, 0, 0, 0]), np.array([0, 0, 0.25, 0, 0, 0]),
                   PERIOD)
    assert up[2] <= math.sqrt(2 * LIMITS.max_accel * 0.001) + 1e-12
    down = env.limit(near_top, np.array([0, 0, -1.0, 0, 0, 0]), np.zeros(6), PERIOD)
    assert down[2] < 0
    outside = env.limit([0, 0, 0.6, 0, 0, 0], np.array([0, 0, 1.0, 0, 0, 0]), np.zeros(6),
                        PERIOD)
    assert outside[2] == 0.0


def test_joint_limits_stop_the_arm_before_they_are_reached() -> None:
    limits = SafetyLimits((-1, -1, -1), (1, 1, 1), joint_min=(-3.0,) * 6, joint_max=(3.0,) * 6,
                          joint_margin=0.1, joint_lookahead=0.2)
    env = SafetyEnvelope(limits)
    env.check_joints([0.0] * 6, [0.0] * 6)
    with pytest.raises(SafetyStop, match="joint 2 is at 2.950"):
        env.check_joints([0, 0, 2.95, 0, 0, 0], [0.0] * 6)
    with pytest.raises(SafetyStop, match="joint 0 would be at 3.000"):
        env.check_joints([2.8, 0, 0, 0, 0, 0], [1.0, 0, 0, 0, 0, 0])
    with pytest.raises(SafetyStop, match="invalid joint state"):
        env.check_joints([math.nan] * 6, [0.0] * 6)


@pytest.mark.parametrize("kwargs, match", [
    ({"workspace_min": (0, 0, 1), "workspace_max": (1, 1, 1)}, "workspace_min"),
    ({"max_speed": 0.0}, "max_speed must be a positive"),
    ({"joint_min": (0.0,) * 5}, "joint_min: expected 6"),
])
def test_bad_limits_name_the_field(kwargs: dict, match: str) -> None:
    base = {"workspace_min": (-1, -1, 0), "workspace_max": (1, 1, 1)}
    with pytest.raises(ValueError, match=match):
        SafetyLimits(**{**base, **kwargs})
