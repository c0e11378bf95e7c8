"""The simulated tasks: which robosuite environment, which catalog targets, how success is judged.

A *target* is a name a catalog entry may use (``cube``, ``table``, ``robot``...) and stands for a
set of MuJoCo bodies. Every task also knows ``light`` (all scene lights). How a target can be
resized depends on what it is:

``object``  a free box object (one collision box plus visual boxes): both geoms take the new
            half-sizes, mass and inertia scale with the volume, and the object is placed to rest
            on its support after every reset.
``table``   robosuite's table: the top's collision and visual boxes take the new half-sizes, the
            top surface stays at the same height (so object placement is unchanged) and the
            visual legs move to the new corners.
``fixed``   a static box standing on the table (the nut's peg): its bottom stays on the table.

Targets without a resize rule (meshes such as the can, composite objects such as the nut) only
take colours; resizing them in place would leave MuJoCo's precomputed collision data stale.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from robomd_diagnoser.catalog import CatalogError

if TYPE_CHECKING:
    from robomd_sim_bridge.world import RobosuiteWorld

RESIZE_RULES = ("object", "table", "fixed")
LIGHT_TARGET = "light"
#: Bodies of the robot (arm and gripper); the mount/pedestal is not part of "robot".
ROBOT_BODIES = ("robot0_", "gripper0_")
#: Lift/Stack count the cube as lifted when its centre is this far above the table top
#: (robosuite's threshold, defined for the nominal cube size).
LIFT_MARGIN = 0.04


@dataclass(frozen=True)
class Target:
    """What a catalog target name stands for in the MuJoCo model.

    :param bodies: body names; an entry ending in ``_`` is a prefix matching many bodies.
    :param resize: one of :data:`RESIZE_RULES`, or None if the target cannot be resized.
    """

    bodies: tuple[str, ...]
    resize: str | None = None


@dataclass(frozen=True)
class TaskSpec:
    """One simulated task.

    :param name: the catalog ``task`` value.
    :param env_name: robosuite environment name.
    :param targets: catalog target name -> :class:`Target` (``light`` is implicit).
    :param primary: the object the robot manipulates (privileged ``object_pos``).
    :param goal_text: what the success check asks, in words (used in judge reasons).
    :param success: judges the current state (see :func:`lift_success` for why not always
        robosuite's own check).
    :param goal: where the primary object must go, world frame (privileged ``goal_pos``), or
        None if the task has no placement goal.
    :param env_kwargs: extra robosuite constructor arguments.
    """

    name: str
    env_name: str
    targets: Mapping[str, Target]
    primary: str
    goal_text: str
    success: Callable[[RobosuiteWorld], bool]
    goal: Callable[[RobosuiteWorld], np.ndarray] | None = None
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)

    @property
    def target_names(self) -> list[str]:
        """Every target a catalog for this task may name (including ``light``)."""
        return [*self.targets, LIGHT_TARGET]

    @property
    def objects(self) -> list[str]:
        """Targets that are free objects (placed on their support after each reset)."""
        return [n for n, t in self.targets.items() if t.resize == "object"]


def robosuite_success(world: RobosuiteWorld) -> bool:
    """robosuite's own ``_check_success``."""
    return bool(world.env._check_success())


def lift_success(world: RobosuiteWorld) -> bool:
    """robosuite's Lift check (cube centre above table top + 4 cm), made size-aware.

    robosuite compares the cube's centre height with a fixed threshold, so a cube with 4 cm
    half-size would count as lifted while resting on the table. Here the threshold rises by the
    change in the cube's half-height, so the cube must be lifted as far as the nominal one.
    """
    cube = world.object_state("cube")
    shift = cube.half_size[2] - cube.nominal_half_size[2]
    return bool(cube.world_pos[2] > world.table_top_z + LIFT_MARGIN + shift)


def stack_success(world: RobosuiteWorld) -> bool:
    """robosuite's Stack check (cube A lifted, touching cube B, not grasped), made size-aware.

    The "lifted" threshold rises with cube A's half-height, as in :func:`lift_success`.
    """
    env = world.env
    cube_a = world.object_state("cube_a")
    shift = cube_a.half_size[2] - cube_a.nominal_half_size[2]
    lifted = cube_a.world_pos[2] > world.table_top_z + LIFT_MARGIN + shift
    grasped = env._check_grasp(gripper=env.robots[0].gripper, object_geoms=env.cubeA)
    return bool(lifted and not grasped and env.check_contact(env.cubeA, env.cubeB))


def stack_goal(world: RobosuiteWorld) -> np.ndarray:
    """Centre of cube B's top face."""
    cube_b = world.object_state("cube_b")
    return np.r_[cube_b.world_pos[:2], cube_b.top_z]


def can_goal(world: RobosuiteWorld) -> np.ndarray:
    """Centre of the can's target compartment, on the target bin's floor."""
    env = world.env
    return np.array(env.target_bin_placements[env.object_id], dtype=float)


def nut_goal(world: RobosuiteWorld) -> np.ndarray:
    """Base of the square peg."""
    env = world.env
    return np.array(env.sim.data.body_xpos[env.peg1_body_id], dtype=float)


_TABLE = Target(("table",), resize="table")
_ROBOT = Target(ROBOT_BODIES)

TASKS: dict[str, TaskSpec] = {
    "lift": TaskSpec(
        name="lift", env_name="Lift", primary="cube", success=lift_success,
        goal_text="cube lifted 4 cm above its rest height",
        targets={"cube": Target(("cube_main",), resize="object"), "table": _TABLE,
                 "robot": _ROBOT}),
    "stack": TaskSpec(
        name="stack", env_name="Stack", primary="cube_a", success=stack_success, goal=stack_goal,
        goal_text="cube A released on top of cube B",
        targets={"cube_a": Target(("cubeA_main",), resize="object"),
                 "cube_b": Target(("cubeB_main",), resize="object"),
                 "table": _TABLE, "robot": _ROBOT}),
    "pick_place_can": TaskSpec(
        name="pick_place_can", env_name="PickPlaceCan", primary="can", success=robosuite_success,
        goal=can_goal, goal_text="can released in its target bin compartment",
        targets={"can": Target(("Can_main",)), "bin": Target(("bin1",)),
                 "target_bin": Target(("bin2",)), "robot": _ROBOT}),
    "nut_assembly_square": TaskSpec(
        name="nut_assembly_square", env_name="NutAssemblySquare", primary="nut",
        success=robosuite_success, goal=nut_goal, goal_text="square nut released around its peg",
        targets={"nut": Target(("SquareNut_main",)), "peg": Target(("peg1",), resize="fixed"),
                 "table": _TABLE, "robot": _ROBOT}),
}


def task_spec(task: str) -> TaskSpec:
    """The :class:`TaskSpec` for a catalog ``task`` value.

    :param task: e.g. ``lift``.
    :raises CatalogError: for a task without a simulated scene, naming the supported ones.
    """
    try:
        return TASKS[task]
    except KeyError:
        raise CatalogError(f"catalog task {task!r} has no simulated scene; the robosuite world "
                           f"supports {', '.join(TASKS)}") from None
