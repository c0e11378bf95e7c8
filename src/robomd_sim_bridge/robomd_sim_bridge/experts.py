"""Scripted experts: closed-loop pick-and-place controllers that read privileged simulator state.

Every expert is a :class:`robomd_diagnoser.policy.RolloutPolicy` with ``uses_image = False`` (the
world then skips rendering). It steers the end effector with OSC_POSE deltas through phases
(approach above the object, descend, close, lift, then carry, lower, release and retreat for tasks
with a placement goal). Phases advance on measured state, not on step counts, so the experts
recover from noise and from a dropped object (they go back and grasp again).

Yaw: the gripper turns to grasp across the object's narrow side when the object is too wide across
the fingers as it stands (``align_yaw="auto"``, the default), always
(``"always"``) or never (``"never"``). The nut expert always grasps the handle across its width
and turns the nut to match the peg while carrying it.
"""

from __future__ import annotations

import math

import numpy as np

from robomd_diagnoser.policy import ACTION_DIM, Observation
from robomd_sim_bridge.world import ObjectState, RobosuiteWorld

ALIGN_MODES = ("auto", "always", "never")
#: OSC_POSE maps an action of 1 to this many metres / radians (robosuite's default output_max).
_POS_SCALE, _ROT_SCALE = 0.05, 0.5
#: Proportional gain on the position error (the OSC covers part of each commanded delta).
_POS_GAIN = 2.0
#: In "auto" mode, turn when the object is wider than this across the fingers (m): about what the
#: Robotiq 85 (85 mm) and Panda (80 mm) grippers can close on.
_WIDE = 0.078
#: Fingertips stay this far above the object's support surface (m).
_TIP_CLEARANCE = 0.004
#: Approach height above the object's top, and lift height above its rest (m).
_APPROACH_ABOVE, _LIFT_HEIGHT = 0.05, 0.12
#: Objects are carried with their bottom this far above the highest obstacle (m).
_CARRY_CLEARANCE = 0.05
#: Closing lasts until the fingers have moved and stopped (opening change below _SETTLED over two
#: steps), between _CLOSE_STEPS and _CLOSE_MAX steps; releasing lasts _RELEASE_STEPS.
_CLOSE_STEPS, _CLOSE_MAX, _SETTLED, _RELEASE_STEPS = 4, 20, 0.01, 6
_STALL_STEPS, _STALL_DIST = 5, 0.001


def _wrap(angle: float, period: float) -> float:
    """Wrap an angle to [-period/2, period/2)."""
    return (angle + period / 2.0) % period - period / 2.0


def _horizontal_yaw(vec: np.ndarray) -> float:
    return math.atan2(vec[1], vec[0])


class PickPlaceExpert:
    """Pick the task's object and, if the task has a goal, place it there.

    :param world: the world to act in (privileged state is read from it).
    :param action_noise: std of Gaussian noise added to the arm part of each action (normalised
        units; the gripper command is left clean).
    :param seed: seed of the noise.
    :param align_yaw: ``auto``, ``always`` or ``never`` (see the module docstring).
    """

    uses_image = False
    #: Horizontal error (m) of the object over its goal before lowering it.
    place_tolerance = 0.006

    def __init__(self, world: RobosuiteWorld, *, action_noise: float = 0.0, seed: int = 0,
                 align_yaw: str = "auto") -> None:
        if align_yaw not in ALIGN_MODES:
            raise ValueError(f"align_yaw must be one of {ALIGN_MODES}, got {align_yaw!r}")
        if action_noise < 0:
            raise ValueError(f"action_noise is a standard deviation (>= 0), got {action_noise}")
        self.world = world
        self.action_noise = action_noise
        self.align_yaw = align_yaw
        self._rng = np.random.default_rng(seed)
        self.reset()

    # ------------------------------------------------------------------ RolloutPolicy

    def reset(self) -> None:
        """Start a new rollout (back to the approach phase)."""
        self.phase = "approach"
        self._phase_steps = 0
        self._trail: list[np.ndarray] = []
        self._openings: list[float] = []
        self._held = 0.0
        self._lift_xy: np.ndarray | None = None
        self._grasp_yaw: float | None = None

    def act(self, obs: Observation) -> np.ndarray:
        """One OSC_POSE action (7,) for the current state (``obs`` is not needed)."""
        del obs
        action = self._step()
        if self.action_noise > 0:
            action[:6] += self._rng.normal(0.0, self.action_noise, 6)
        return np.clip(action, -1.0, 1.0)

    # ------------------------------------------------------------------ task hooks

    def _object(self) -> ObjectState:
        return self.world.object_state(self.world.spec.primary)

    def _grasp_point(self, obj: ObjectState) -> np.ndarray:
        """World point the finger pads close on."""
        return obj.world_pos

    def _place_target(self) -> np.ndarray | None:
        """World point the object's bottom centre goes to; None for pick-only tasks."""
        goal = self.world.spec.goal
        return None if goal is None else goal(self.world)

    def _obstacle_top(self) -> float:
        """Highest obstacle between pick and place (world z)."""
        return self._place_target()[2]

    def _carry_yaw(self, obj: ObjectState) -> float:
        """Yaw correction while carrying (rad)."""
        del obj
        return 0.0

    def _release_height(self) -> float:
        """Height of the object's bottom above the place target when released (m)."""
        return 0.005

    # ------------------------------------------------------------------ state machine

    def _step(self) -> np.ndarray:
        w = self.world
        obj = self._object()
        eef = w.data.site_xpos[w.eef_site].copy()
        pads = self._pad_positions()
        pad_offset = pads.mean(axis=0)[2] - eef[2]
        closing_yaw = _horizontal_yaw(pads[1] - pads[0])
        bottom, top = obj.bottom_z, obj.top_z
        grip_z = max(self._grasp_point(obj)[2] - pad_offset, bottom + _TIP_CLEARANCE)
        self._phase_steps += 1
        self._trail.append(eef)
        p = self.phase

        if p in ("approach", "descend", "close"):
            grasp = self._grasp_point(obj)
            if self._grasp_yaw is None or p == "approach":
                self._grasp_yaw = self._choose_yaw(obj, closing_yaw)
            dyaw = _wrap(self._grasp_yaw - closing_yaw, math.pi)
            if p == "approach":
                target = np.r_[grasp[:2], max(top + _APPROACH_ABOVE, grip_z)]
                err = target - eef
                if np.linalg.norm(err[:2]) < 0.01 and abs(err[2]) < 0.02 and abs(dyaw) < 0.08:
                    self._enter("descend")
                return self._command(target, eef, -1.0, dyaw)
            if p == "descend":
                target = np.r_[grasp[:2], grip_z]
                if abs(target[2] - eef[2]) < 0.006 or self._stalled():
                    self._enter("close")
                return self._command(target, eef, -1.0, dyaw, speed=0.6)
            target = np.r_[grasp[:2], grip_z]  # follow the object: keeps the fingers centred
            self._openings.append(w.gripper_opening())
            moved = self._openings[0] - self._openings[-1] > _SETTLED  # some grippers lag
            settled = moved and len(self._openings) > 2 and \
                abs(self._openings[-1] - self._openings[-3]) < _SETTLED
            if self._phase_steps >= _CLOSE_MAX or (self._phase_steps >= _CLOSE_STEPS and settled):
                self._lift_xy = eef[:2].copy()
                self._enter("lift")
            return self._command(target, eef, 1.0, 0.0)

        if p in ("lift", "carry", "lower") and self._dropped(obj.world_pos[2] - eef[2]):
            self._enter("approach")
            return self._command(eef + np.r_[0.0, 0.0, 0.03], eef, -1.0, 0.0)

        place = self._place_target()
        if p == "lift":
            if place is None:
                return self._command(np.r_[self._lift_xy, grip_z + _LIFT_HEIGHT], eef, 1.0, 0.0)
            carry_bottom = max(self._obstacle_top(), place[2]) + _CARRY_CLEARANCE
            if bottom > carry_bottom - 0.01:
                self._enter("carry")
            target = np.r_[self._lift_xy, eef[2] + carry_bottom - bottom]
            return self._command(target, eef, 1.0, 0.0)

        offset = eef - obj.world_pos  # grasp point to object origin, kept while held
        if p == "carry":
            carry_bottom = max(self._obstacle_top(), place[2]) + _CARRY_CLEARANCE
            target = np.r_[place[:2] + offset[:2], eef[2] + carry_bottom - bottom]
            dyaw = self._carry_yaw(obj)
            err = target - eef
            still = len(self._trail) > 1 and np.linalg.norm(eef - self._trail[-2]) < 0.004
            if np.linalg.norm(err[:2]) < self.place_tolerance and abs(err[2]) < 0.02 and \
                    abs(dyaw) < 0.05 and still:
                self._enter("lower")
            return self._command(target, eef, 1.0, dyaw)
        if p == "lower":
            release_bottom = place[2] + self._release_height()
            target = np.r_[place[:2] + offset[:2], eef[2] + release_bottom - bottom]
            if bottom < release_bottom + 0.005:
                self._enter("release")
            elif self._stalled():  # resting on something: release if low, else lift and realign
                self._enter("release" if bottom < self._obstacle_top() - 0.02 else "carry")
            return self._command(target, eef, 1.0, self._carry_yaw(obj), speed=0.4)
        if p == "release":
            if self._phase_steps >= _RELEASE_STEPS:
                self._enter("retreat")
            return self._command(eef, eef, -1.0, 0.0)
        return self._command(eef + np.r_[0.0, 0.0, 0.1], eef, -1.0, 0.0)  # retreat

    # ------------------------------------------------------------------ helpers

    def _enter(self, phase: str) -> None:
        self.phase = phase
        self._phase_steps = 0
        self._trail = []
        self._openings = []

    def _stalled(self) -> bool:
        if self._phase_steps < 2 * _STALL_STEPS:
            return False
        return float(np.linalg.norm(self._trail[-1] - self._trail[-_STALL_STEPS])) < _STALL_DIST

    def _dropped(self, held: float) -> bool:
        """The object no longer moves with the gripper (slipped, or the fingers closed on air).

        :param held: object height minus gripper height; it must stay about constant.
        """
        if self._phase_steps < 4:
            self._held = held
            return False
        return held < self._held - 0.02 or self.world.gripper_opening() < 0.02

    def _pad_positions(self) -> np.ndarray:
        w = self.world
        gripper = w.env.robots[0].gripper["right"]
        geoms = [gripper.important_geoms["left_fingerpad"][0],
                 gripper.important_geoms["right_fingerpad"][0]]
        return np.array([w.data.geom_xpos[w.model.geom(g).id] for g in geoms])

    def _choose_yaw(self, obj: ObjectState, closing_yaw: float) -> float:
        """Gripper yaw for the grasp: keep it, or close across the object's narrow side."""
        if self.align_yaw == "never":
            return closing_yaw
        # candidate closing directions (the object's x and y axes) and its width across each
        axes = [(obj.world_rot[:, i], 2.0 * obj.half_size[i]) for i in (0, 1)]
        closing = np.array([math.cos(closing_yaw), math.sin(closing_yaw), 0.0])
        across = sum(abs(float(closing @ a)) * width for a, width in axes)
        if self.align_yaw == "auto" and across <= _WIDE:
            return closing_yaw
        narrowest = min(width for _, width in axes)
        best = min((abs(_wrap(_horizontal_yaw(a) - closing_yaw, math.pi)), _horizontal_yaw(a))
                   for a, width in axes if width <= narrowest * 1.05)
        return best[1]

    def _command(self, target: np.ndarray, eef: np.ndarray, grip: float, dyaw: float,
                 speed: float = 1.0) -> np.ndarray:
        """Action toward ``target`` (world), keeping the gripper vertical and turning by dyaw."""
        w = self.world
        base_rot = w.data.xmat[w.base_body].reshape(3, 3)
        action = np.zeros(ACTION_DIM)
        action[:3] = np.clip(_POS_GAIN * base_rot.T @ (target - eef) / _POS_SCALE, -speed, speed)
        down = w.data.site_xmat[w.eef_site].reshape(3, 3)[:, 2]  # approach axis of the gripper
        tilt = np.cross(down, np.array([0.0, 0.0, -1.0]))  # rotates `down` to point straight down
        rot = tilt + np.array([0.0, 0.0, dyaw])
        action[3:6] = np.clip(base_rot.T @ rot / _ROT_SCALE, -1.0, 1.0)
        action[6] = grip
        return action


class LiftExpert(PickPlaceExpert):
    """Grasp the cube and lift it."""


class StackExpert(PickPlaceExpert):
    """Grasp cube A and release it on cube B."""


class CanExpert(PickPlaceExpert):
    """Grasp the can in the left bin and release it over its compartment of the right bin."""

    #: Bin walls rise 0.1 m above the bins' body origin.
    WALL_HEIGHT = 0.1

    def _obstacle_top(self) -> float:
        return self._place_target()[2] + self.WALL_HEIGHT

    def _choose_yaw(self, obj: ObjectState, closing_yaw: float) -> float:
        return closing_yaw  # round: any direction will do

    def _release_height(self) -> float:
        return 0.03


class NutExpert(PickPlaceExpert):
    """Grasp the square nut by its handle and lower it around the square peg."""

    place_tolerance = 0.003

    def _grasp_point(self, obj: ObjectState) -> np.ndarray:
        w = self.world
        return w.data.site_xpos[w.model.site("SquareNut_handle_site").id].copy()

    def _choose_yaw(self, obj: ObjectState, closing_yaw: float) -> float:
        across_handle = obj.world_rot[:, 1]
        return closing_yaw + _wrap(_horizontal_yaw(across_handle) - closing_yaw, math.pi)

    def _obstacle_top(self) -> float:
        return self.world.object_state("peg").top_z

    def _place_target(self) -> np.ndarray:
        peg = self.world.object_state("peg")
        return np.r_[peg.world_pos[:2], self.world.table_top_z]

    def _carry_yaw(self, obj: ObjectState) -> float:
        peg = self.world.object_state("peg")
        return _wrap(_horizontal_yaw(peg.world_rot[:, 0]) - _horizontal_yaw(obj.world_rot[:, 0]),
                     math.pi / 2.0)


_EXPERTS: dict[str, type[PickPlaceExpert]] = {
    "lift": LiftExpert, "stack": StackExpert, "pick_place_can": CanExpert,
    "nut_assembly_square": NutExpert,
}


def make_expert(world: RobosuiteWorld, *, action_noise: float = 0.0, seed: int = 0,
                align_yaw: str = "auto") -> PickPlaceExpert:
    """The scripted expert for ``world``'s task.

    :param world: the simulated world (its task picks the expert).
    :param action_noise: std of Gaussian noise on the arm part of each action.
    :param seed: noise seed.
    :param align_yaw: ``auto``, ``always`` or ``never``.
    """
    return _EXPERTS[world.spec.name](world, action_noise=action_noise, seed=seed,
                                     align_yaw=align_yaw)
