"""Factor-family levels (:mod:`robomd_diagnoser.space`) as in-place edits of the loaded scene.

Three kinds of edit, all undone exactly by :meth:`FactorEditor.restore`:

*Model edits* write the compiled model's arrays, which :class:`~robomd_sim_bridge.perturb.
SceneEditor` records at construction and copies back on restore: colours (``geom_rgba``),
textures (``geom_matid`` of the table top's visual box, set to one of the scene's own robosuite
materials), light colour, intensity (``light_diffuse``) and direction (``light_dir``), the
rendering camera's pose (``cam_pos``/``cam_quat`` of the scene camera only), object size (as the
``size`` kind), mass (``body_mass``/``body_inertia`` then ``mj_setConst``), sliding friction
(``geom_friction`` of the collision geoms) and distractors (``body_pos`` of static distractor
bodies that are part of the model from the start, parked under the floor until a level puts
them on the support beside the task object).

*Placement edits* change the episode's initial state after robosuite's placement draw: the
object's start position and yaw, and every arm joint's start angle.

*Digital edits* act on the software pipeline (:class:`robomd_diagnoser.digital.DigitalPipeline`,
the one definition the real robot's executor uses too): image corruptions are applied to every
image the scene camera renders, so the policy's observation and the recorded video are the same
image; action noise is added to the policy's actions before they reach the controller. Noise is
seeded by the episode seed.
"""

from __future__ import annotations

import hashlib
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

import mujoco
import numpy as np

from robomd_diagnoser.catalog import Catalog, CatalogError, Perturbation
from robomd_diagnoser.digital import DigitalPipeline
from robomd_diagnoser.space import MEMBER_KIND, Level
from robomd_sim_bridge.perturb import check_perturbation
from robomd_sim_bridge.tasks import LIGHT_TARGET, TaskSpec

if TYPE_CHECKING:
    from robomd_sim_bridge.world import RobosuiteWorld

#: Distractor bodies added to a scene whose catalog has a ``distractors`` family:
#: (geom type, half-sizes, RGBA, xy offset from the task object's nominal start).
DISTRACTORS = (
    ("box", (0.02, 0.02, 0.03), (0.9, 0.8, 0.1, 1.0), (0.0, 0.13)),
    ("cylinder", (0.02, 0.035, 0.0), (0.1, 0.4, 0.9, 1.0), (0.0, -0.13)),
    ("box", (0.03, 0.015, 0.02), (0.8, 0.2, 0.7, 1.0), (0.13, 0.0)),
    ("sphere", (0.025, 0.0, 0.0), (0.2, 0.8, 0.3, 1.0), (-0.12, 0.08)),
)
#: Where distractors wait until a level places them (under the floor, out of every camera's view).
PARKED = (0.0, 0.0, -2.0)
_OBJECT_FACTORS = {"object_color", "object_position", "object_yaw", "object_size",
                   "object_mass", "object_friction"}
_FREE_FACTORS = {"object_position", "object_yaw", "object_mass", "object_friction"}


def needs_distractors(catalog: Catalog) -> int:
    """How many distractor bodies the catalog's ``distractors`` levels need (0 if none)."""
    if catalog.space is None:
        return 0
    counts = [int(lv.value[0]) for f in catalog.space.families if f.factor == "distractors"
              for lv in f.levels]
    return max(counts, default=0)


def with_distractors(xml: str, count: int) -> str:
    """The scene's MJCF with ``count`` static distractor bodies parked under the floor."""
    root = ET.fromstring(xml)
    worldbody = root.find("worldbody")
    for i, (kind, size, rgba, _) in enumerate(DISTRACTORS[:count]):
        body = ET.SubElement(worldbody, "body", name=f"distractor{i}",
                             pos=" ".join(map(str, PARKED)))
        sizes = " ".join(str(s) for s in size if s > 0)
        rgba_s = " ".join(map(str, rgba))
        ET.SubElement(body, "geom", name=f"distractor{i}_collision", type=kind, size=sizes,
                      group="0", rgba=rgba_s, contype="1", conaffinity="1")
        ET.SubElement(body, "geom", name=f"distractor{i}_visual", type=kind, size=sizes,
                      group="1", rgba=rgba_s, contype="0", conaffinity="0")
    return ET.tostring(root, encoding="unicode")


def check_level(spec: TaskSpec, level: Level) -> None:
    """Raise CatalogError if ``level`` cannot be applied in ``spec``'s scene (names the fix)."""
    where = f"family {level.family!r} level {level.name!r} (task {spec.name})"
    factor = level.factor
    if factor in _OBJECT_FACTORS or factor in ("table_color", "robot_color"):
        if level.target not in spec.targets:
            raise CatalogError(f"{where}: unknown target {level.target!r}; valid targets: "
                               f"{', '.join(spec.targets)}")
    if factor == "object_size" and spec.targets[level.target].resize != "object":
        raise CatalogError(f"{where}: target {level.target!r} cannot be resized in place; "
                           f"resizable objects: {', '.join(spec.objects) or 'none'}")
    if factor == "table_texture" and "table" not in spec.targets:
        raise CatalogError(f"{where}: task {spec.name} has no table")


def check_catalog(spec: TaskSpec, catalog: Catalog) -> None:
    """Check every single entry and every family level (not every member) against the scene."""
    for p in catalog.perturbations:
        check_perturbation(spec, p)
    if catalog.space is not None:
        for family in catalog.space.families:
            for level in family.levels:
                check_level(spec, level)


class FactorEditor:
    """Applies catalog entries (single kinds and space members) to a world, with exact restore.

    :param world: the world (its ``editor`` does the model bookkeeping).
    :raises CatalogError: for a level naming something this scene lacks (a material, a free
        object).
    """

    def __init__(self, world: RobosuiteWorld) -> None:
        self.world = world
        m = world.model
        self.camera_id = m.camera(world.camera).id
        self._materials = {m.material(i).name: i for i in range(m.nmat)}
        self._distractors = [m.body(f"distractor{i}").id for i in range(len(DISTRACTORS))
                             if _has_body(m, f"distractor{i}")]
        self._free: dict[str, int] = {}  # target -> qpos address of its free joint
        for name in world.spec.targets:
            body = world.editor.body_id(name)
            jnt = m.body_jntadr[body]
            if jnt >= 0 and m.jnt_type[jnt] == mujoco.mjtJoint.mjJNT_FREE:
                self._free[name] = int(m.jnt_qposadr[jnt])
        robot = world.env.robots[0]
        self._arm_qpos = np.array([m.jnt_qposadr[m.joint(j).id]
                                   for j in robot.robot_model.joints])
        self._scratch = (m, mujoco.MjData(m))
        self._spots: np.ndarray | None = None
        self.digital = DigitalPipeline()
        if world.catalog.space is not None:
            for family in world.catalog.space.families:
                for level in family.levels:
                    self._check_in_model(level)
        self.restore()

    # ------------------------------------------------------------------ public

    def restore(self) -> None:
        """Undo every edit: the model (through the scene editor) and the episode-level state."""
        self.world.editor.restore()
        self.offsets: dict[str, np.ndarray] = {}  # target -> (dx, dy, yaw radians)
        self.joint_offset = 0.0
        self.digital.clear()

    def apply(self, p: Perturbation) -> None:
        """Apply a single entry (today's kinds) or every level of a space member, in order."""
        if p.kind != MEMBER_KIND:
            self.world.editor.apply(p)
            return
        for level in p.edits:
            self.apply_level(level)

    def apply_level(self, level: Level) -> None:
        """Apply one family level on top of the current edits."""
        world, m, f = self.world, self.world.model, level.factor
        value = level.value
        if f in ("object_color", "table_color", "robot_color"):
            world.editor.apply(Perturbation(level.full_name, level.text, "color", level.target,
                                            value))
        elif f == "light_color":
            world.editor.apply(Perturbation(level.full_name, level.text, "light", LIGHT_TARGET,
                                            value))
        elif f == "light_intensity":
            m.light_diffuse[:] = m.light_diffuse * value[0]
        elif f == "light_direction":
            rot = euler_mat(np.radians([value[0], value[1], 0.0]))
            m.light_dir[:] = m.light_dir @ rot.T
        elif f == "table_texture":
            top = [g for g in world.editor.visual_geoms("table")
                   if m.geom_type[g] == mujoco.mjtGeom.mjGEOM_BOX]
            m.geom_matid[top] = self._materials[value]
        elif f == "camera_position":
            m.cam_pos[self.camera_id] += np.asarray(value)
        elif f == "camera_orientation":
            q = np.zeros(4)
            mujoco.mju_mat2Quat(q, euler_mat(np.radians(value)).reshape(-1))
            out = np.zeros(4)
            mujoco.mju_mulQuat(out, m.cam_quat[self.camera_id], q)
            m.cam_quat[self.camera_id] = out
        elif f == "object_size":
            half = world.editor.bounds(level.target, nominal=True)[1] * np.asarray(value)
            world.editor.apply(Perturbation(level.full_name, level.text, "size", level.target,
                                            tuple(half)))
        elif f == "object_mass":
            body = world.editor.body_id(level.target)
            m.body_mass[body] *= value[0]
            m.body_inertia[body] *= value[0]
            if self._scratch[0] is not m:  # the simulator was rebuilt from XML
                self._scratch = (m, mujoco.MjData(m))
            mujoco.mj_setConst(m, self._scratch[1])
        elif f == "object_friction":
            m.geom_friction[world.editor.collision_geoms(level.target), 0] *= value[0]
        elif f == "distractors":
            spots = self.distractor_spots()
            for i, body in enumerate(self._distractors):
                m.body_pos[body] = spots[i] if i < int(value[0]) else PARKED
        elif f == "object_position":
            self._offset(level.target)[:2] += np.asarray(value)
        elif f == "object_yaw":
            self._offset(level.target)[2] += np.radians(value[0])
        elif f == "robot_joint_offset":
            self.joint_offset += value[0]
        elif level.digital:
            self.digital.add(level)
        else:  # pragma: no cover - FACTORS and this dispatch are kept in step by the tests
            raise CatalogError(f"factor {f!r} has no simulated edit")

    def on_reset(self, seed: int) -> None:
        """After robosuite's placement draw: apply placement offsets; reseed the noise."""
        world, data = self.world, self.world.data
        if self._spots is None:  # the first (nominal, seed 0) episode fixes distractor spots
            self._spots = self._nominal_spots()
        for target, (dx, dy, yaw) in self.offsets.items():
            adr = self._free[target]
            data.qpos[adr:adr + 2] += (dx, dy)
            q = np.zeros(4)
            mujoco.mju_axisAngle2Quat(q, np.array([0.0, 0.0, 1.0]), yaw)
            out = np.zeros(4)
            mujoco.mju_mulQuat(out, q, data.qpos[adr + 3:adr + 7].copy())
            data.qpos[adr + 3:adr + 7] = out
        if self.joint_offset:
            data.qpos[self._arm_qpos] += self.joint_offset
            data.qvel[:] = 0.0
        if self.joint_offset or self.offsets:
            controller = world.env.robots[0].composite_controller
            mujoco.mj_forward(world.model, data)
            controller.update_state()
            controller.reset()  # controller goals follow the new start pose
        self.digital.reseed(seed)

    def state_digest(self) -> str:
        """Hash of the episode-level and digital edits (empty after restore)."""
        h = hashlib.sha256()
        for target in sorted(self.offsets):
            h.update(target.encode() + self.offsets[target].tobytes())
        h.update(np.array([self.joint_offset, self.digital.action_noise]).tobytes())
        h.update(repr(self.digital.image_ops).encode())
        return h.hexdigest()

    def distractor_spots(self) -> np.ndarray:
        """Where placed distractors stand (world frame), fixed by the first episode."""
        if self._spots is None:
            raise RuntimeError("distractor spots are fixed by the first episode reset")
        return self._spots

    # ------------------------------------------------------------------ internals

    def _offset(self, target: str) -> np.ndarray:
        return self.offsets.setdefault(target, np.zeros(3))

    def _check_in_model(self, level: Level) -> None:
        where = f"family {level.family!r} level {level.name!r}"
        if level.factor == "table_texture" and level.value not in self._materials:
            raise CatalogError(f"{where}: material {level.value!r} is not in the scene; "
                               f"materials: {', '.join(self._materials)}")
        if level.factor in _FREE_FACTORS and level.target not in self._free:
            raise CatalogError(f"{where}: {level.target!r} is not a free object; free objects: "
                               f"{', '.join(self._free) or 'none'}")
        if level.factor == "distractors" and int(level.value[0]) > len(self._distractors):
            raise CatalogError(f"{where}: at most {len(DISTRACTORS)} distractors")

    def _nominal_spots(self) -> np.ndarray:
        """Distractor positions: beside the task object's start, resting on its support."""
        world = self.world
        obj = world.object_state(world.spec.primary)
        spots = []
        for kind, size, _, (dx, dy) in DISTRACTORS:
            half_z = {"box": size[2], "cylinder": size[1], "sphere": size[0]}[kind]
            spots.append((obj.world_pos[0] + dx, obj.world_pos[1] + dy,
                          obj.bottom_z + half_z + 1e-3))
        return np.array(spots)


def _has_body(m: mujoco.MjModel, name: str) -> bool:
    return mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, name) >= 0


def euler_mat(angles: np.ndarray) -> np.ndarray:
    """Rotation matrix of intrinsic x-y-z Euler angles (radians)."""
    q = np.zeros(4)
    mujoco.mju_euler2Quat(q, np.asarray(angles, dtype=float), "xyz")
    mat = np.zeros(9)
    mujoco.mju_quat2Mat(mat, q)
    return mat.reshape(3, 3)
