"""The safety envelope every arm command passes through, whatever the policy outputs.

A policy action (see :mod:`robomd_diagnoser.policy`: 3 position deltas, 3 rotation deltas, gripper,
normalised to [-1, 1] like robosuite's OSC_POSE) becomes a TCP twist for ``speedL``:

1. :class:`ActionMapper`: a non-finite action raises :class:`NonFiniteAction` (the executor stops
   the arm and aborts); out-of-range values are clipped to [-1, 1]; the deltas are scaled to metres
   and radians per control period, rotated from the policy's frame into the robot base frame and
   divided by the period.
2. :meth:`SafetyEnvelope.limit`: linear and angular speed capped; the change from the previous
   command capped by the acceleration limits; and, per axis, the speed toward each face of the
   workspace box capped so the arm can still brake to a stop at the face with the acceleration
   limit (moving away from a face, or back into the box, is always allowed).
3. :meth:`SafetyEnvelope.check_joints`: before every command, each joint and its position one
   lookahead ahead at the current joint speed must stay ``joint_margin`` inside its limits, else
   :class:`SafetyStop`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from robomd_diagnoser.policy import ACTION_DIM


class SafetyStop(RuntimeError):
    """The arm must stop and the rollout abort; the message says why."""


class NonFiniteAction(SafetyStop):
    """The policy produced NaN or infinity."""


def _vec(values: Sequence[float], n: int, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float).reshape(-1)
    if arr.shape != (n,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: expected {n} finite numbers, got {list(values)!r}")
    return arr


@dataclass(frozen=True)
class SafetyLimits:
    """Limits of the envelope (robot base frame, SI units).

    :param workspace_min: lower corner (x, y, z) of the box the TCP must stay in, metres.
    :param workspace_max: upper corner, metres.
    :param max_speed: TCP linear speed limit, m/s.
    :param max_accel: TCP linear acceleration limit, m/s^2.
    :param max_rot_speed: TCP angular speed limit, rad/s.
    :param max_rot_accel: TCP angular acceleration limit, rad/s^2.
    :param joint_min: lower joint limits (6), rad.
    :param joint_max: upper joint limits (6), rad.
    :param joint_margin: how far inside the joint limits the arm must stay, rad.
    :param joint_lookahead: seconds ahead the joint check extrapolates at the current speed.
    """

    workspace_min: tuple[float, float, float]
    workspace_max: tuple[float, float, float]
    max_speed: float = 0.25
    max_accel: float = 1.0
    max_rot_speed: float = 1.0
    max_rot_accel: float = 4.0
    joint_min: tuple[float, ...] = (-2 * math.pi,) * 6
    joint_max: tuple[float, ...] = (2 * math.pi,) * 6
    joint_margin: float = 0.05
    joint_lookahead: float = 0.2

    def __post_init__(self) -> None:
        lo = _vec(self.workspace_min, 3, "workspace_min")
        hi = _vec(self.workspace_max, 3, "workspace_max")
        if np.any(lo >= hi):
            raise ValueError(f"workspace_min {list(lo)} must be below workspace_max {list(hi)} "
                             "on every axis")
        for name in ("max_speed", "max_accel", "max_rot_speed", "max_rot_accel"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        jlo = _vec(self.joint_min, 6, "joint_min")
        jhi = _vec(self.joint_max, 6, "joint_max")
        if np.any(jlo + 2 * self.joint_margin >= jhi):
            raise ValueError("joint_min + 2 * joint_margin must be below joint_max for every "
                             f"joint, got joint_min {list(jlo)}, joint_max {list(jhi)}")
        if self.joint_margin < 0 or self.joint_lookahead < 0:
            raise ValueError("joint_margin and joint_lookahead must be >= 0")


def rotation_from_rpy(rpy: Sequence[float]) -> np.ndarray:
    """Rotation matrix of fixed-axis roll, pitch, yaw (radians): Rz(yaw) Ry(pitch) Rx(roll)."""
    r, p, y = _vec(rpy, 3, "rpy")
    cr, sr, cp, sp, cy, sy = math.cos(r), math.sin(r), math.cos(p), math.sin(p), math.cos(y), \
        math.sin(y)
    return np.array([[cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
                     [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
                     [-sp, cp * sr, cp * cr]])


@dataclass(frozen=True)
class MappedAction:
    """A policy action in robot terms: the TCP twist it asks for and the gripper command."""

    twist: np.ndarray  # (6,) vx, vy, vz (m/s), wx, wy, wz (rad/s), base frame
    close_gripper: bool
    clipped: bool  # some action component was outside [-1, 1]


class ActionMapper:
    """Policy action -> TCP twist and gripper command.

    :param pos_scale: metres per unit of position delta per control period (robosuite's OSC_POSE
        uses 0.05).
    :param rot_scale: radians per unit of rotation delta per control period (OSC_POSE: 0.5).
    :param period: control period, seconds.
    :param frame_rpy: roll, pitch, yaw of the policy's action frame in the robot base frame.
    """

    def __init__(self, pos_scale: float, rot_scale: float, period: float,
                 frame_rpy: Sequence[float] = (0.0, 0.0, 0.0)) -> None:
        for name, value in (("pos_scale", pos_scale), ("rot_scale", rot_scale),
                            ("period", period)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        self.pos_scale, self.rot_scale, self.period = pos_scale, rot_scale, period
        self.rotation = rotation_from_rpy(frame_rpy)

    def map(self, action: object) -> MappedAction:
        """Map one policy output.

        :raises NonFiniteAction: for NaN or infinite components.
        :raises SafetyStop: for an action of the wrong size.
        """
        if hasattr(action, "detach"):
            action = action.detach().cpu().numpy()
        arr = np.asarray(action, dtype=float).reshape(-1)
        if arr.shape != (ACTION_DIM,):
            raise SafetyStop(f"the policy returned {arr.size} action values; it must return "
                             f"{ACTION_DIM} (dpos 3, drot 3, gripper 1)")
        if not np.all(np.isfinite(arr)):
            raise NonFiniteAction(f"the policy returned a non-finite action {arr.tolist()}")
        clipped = np.clip(arr, -1.0, 1.0)
        linear = self.rotation @ clipped[:3] * (self.pos_scale / self.period)
        angular = self.rotation @ clipped[3:6] * (self.rot_scale / self.period)
        return MappedAction(np.r_[linear, angular], bool(clipped[6] > 0.0),
                            bool(np.any(clipped != arr)))


def _cap_norm(vec: np.ndarray, limit: float) -> np.ndarray:
    norm = float(np.linalg.norm(vec))
    return vec * (limit / norm) if norm > limit else vec


class SafetyEnvelope:
    """Enforces :class:`SafetyLimits` on every command.

    :param limits: the limits.
    """

    def __init__(self, limits: SafetyLimits) -> None:
        self.limits = limits
        self._lo = np.asarray(limits.workspace_min, dtype=float)
        self._hi = np.asarray(limits.workspace_max, dtype=float)
        self._jlo = np.asarray(limits.joint_min, dtype=float) + limits.joint_margin
        self._jhi = np.asarray(limits.joint_max, dtype=float) - limits.joint_margin

    def limit(self, tcp_pose: Sequence[float], twist: np.ndarray, previous: np.ndarray,
              period: float) -> np.ndarray:
        """The twist to command instead of ``twist``.

        :param tcp_pose: the TCP's current pose (x, y, z, rx, ry, rz), base frame.
        :param twist: the requested twist (6,).
        :param previous: the twist commanded last period (zeros after a stop).
        :param period: control period, seconds.
        :raises NonFiniteAction: if ``twist`` is not finite.
        :raises SafetyStop: if the TCP pose is not finite (a broken state reading).
        """
        lim = self.limits
        twist = np.asarray(twist, dtype=float)
        if not np.all(np.isfinite(twist)):
            raise NonFiniteAction(f"non-finite twist {twist.tolist()}")
        pos = np.asarray(tcp_pose, dtype=float)[:3]
        if not np.all(np.isfinite(pos)):
            raise SafetyStop(f"the robot reported a non-finite TCP pose {list(tcp_pose)}")
        linear = _cap_norm(twist[:3], lim.max_speed)
        angular = _cap_norm(twist[3:], lim.max_rot_speed)
        linear = previous[:3] + _cap_norm(linear - previous[:3], lim.max_accel * period)
        angular = previous[3:] + _cap_norm(angular - previous[3:], lim.max_rot_accel * period)
        # Braking distance to each face: v <= sqrt(2 a d); no speed outward at or beyond a face.
        # The box wins over the acceleration limit (a hard constraint).
        to_hi = np.maximum(self._hi - pos, 0.0)
        to_lo = np.maximum(pos - self._lo, 0.0)
        linear = np.minimum(linear, np.sqrt(2.0 * lim.max_accel * to_hi))
        linear = np.maximum(linear, -np.sqrt(2.0 * lim.max_accel * to_lo))
        # Within one period the TCP must not cross a face either.
        linear = np.minimum(linear, to_hi / period)
        linear = np.maximum(linear, -to_lo / period)
        return np.r_[linear, angular]

    def check_joints(self, q: Sequence[float], qd: Sequence[float]) -> None:
        """Stop if a joint is (or is about to be) within ``joint_margin`` of its limits.

        :param q: joint positions (6), rad.
        :param qd: joint speeds (6), rad/s.
        :raises SafetyStop: naming the joint, its position and the limit.
        """
        q = np.asarray(q, dtype=float)
        qd = np.asarray(qd, dtype=float)
        if q.shape != (6,) or not np.all(np.isfinite(q)) or not np.all(np.isfinite(qd)):
            raise SafetyStop(f"the robot reported invalid joint state q={list(q)}, qd={list(qd)}")
        ahead = q + qd * self.limits.joint_lookahead
        for i in range(6):
            for value, when in ((q[i], "is"), (ahead[i], "would be")):
                if value < self._jlo[i] or value > self._jhi[i]:
                    raise SafetyStop(
                        f"joint {i} {when} at {value:.3f} rad, within {self.limits.joint_margin} "
                        f"rad of its limits [{self.limits.joint_min[i]:.3f}, "
                        f"{self.limits.joint_max[i]:.3f}]")
