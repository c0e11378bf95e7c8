"""Catalog perturbations as in-place edits of a loaded MuJoCo model, with an exact restore.

No XML is regenerated: each edit writes the compiled model's arrays directly, including the
quantities MuJoCo derives from them at compile time, so physics stays consistent:

``color``  ``geom_rgba`` of the target's visual geoms, and ``geom_matid = -1`` (a material's
           texture would otherwise hide the colour).
``light``  ``light_diffuse`` of every scene light (the headlight is not a scene light).
``size``   ``geom_size`` of the target's collision *and* visual boxes, with the bounding data
           the collision pipeline relies on (``geom_rbound``, ``geom_aabb``, the body's
           ``bvh_aabb``) and, for free objects, mass and inertia scaled with the volume (then
           ``mj_setConst``).
           Table and peg placements are handled as described in :mod:`robomd_sim_bridge.tasks`.

The nominal values of every array an edit can touch are copied once, at construction;
:meth:`SceneEditor.restore` copies them back, so the model returns to nominal bit for bit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import mujoco
import numpy as np

from robomd_diagnoser.catalog import CatalogError, Perturbation
from robomd_sim_bridge.tasks import LIGHT_TARGET, TaskSpec

#: Model arrays the edits write (directly or through mj_setConst); restored on reset.
RESTORED_FIELDS = (
    "geom_size", "geom_rgba", "geom_matid", "geom_pos", "geom_rbound", "geom_aabb", "bvh_aabb",
    "light_diffuse", "body_pos", "body_mass", "body_inertia", "site_pos",
    # written by mj_setConst after a mass change
    "body_subtreemass", "body_invweight0", "dof_invweight0", "dof_M0", "tendon_invweight0",
    "tendon_length0", "actuator_acc0", "actuator_length0", "cam_pos0", "cam_mat0", "cam_poscom0",
    "light_pos0", "light_dir0", "light_poscom0",
    # written by factor-family levels (robomd_sim_bridge.factors)
    "light_dir", "cam_pos", "cam_quat", "geom_friction",
)
#: Arrays hashed by :meth:`SceneEditor.digest`: everything restored plus the rest of the
#: appearance and placement a perturbation could plausibly touch.
DIGEST_FIELDS = RESTORED_FIELDS + (
    "geom_quat", "geom_type", "body_quat", "body_ipos", "body_iquat", "mat_rgba",
    "light_pos", "light_specular", "light_ambient", "qpos0",
)
_STAT_FIELDS = ("meaninertia", "meanmass", "meansize", "extent", "center")
#: robosuite's TableArena puts each leg this far in from the table's corner (x and y).
_LEG_INSET = 0.1


def check_perturbation(spec: TaskSpec, p: Perturbation) -> None:
    """Raise CatalogError if ``p`` cannot be applied in ``spec``'s scene (names the fix).

    :param spec: the task.
    :param p: a catalog entry.
    """
    where = f"perturbation {p.name!r} (task {spec.name})"
    valid = spec.target_names
    if p.target not in valid:
        raise CatalogError(f"{where}: unknown target {p.target!r}; valid targets: "
                           f"{', '.join(valid)}")
    if p.kind == "object":
        raise CatalogError(f"{where}: kind 'object' (swapping objects) is not supported by the "
                           "robosuite world; use color, light or size")
    if p.kind == "light" and p.target != LIGHT_TARGET:
        raise CatalogError(f"{where}: kind 'light' needs target {LIGHT_TARGET!r}, got "
                           f"{p.target!r}")
    if p.kind != "light" and p.target == LIGHT_TARGET:
        raise CatalogError(f"{where}: target {LIGHT_TARGET!r} only takes kind 'light'")
    if p.kind == "size" and spec.targets[p.target].resize is None:
        sizable = [n for n, t in spec.targets.items() if t.resize]
        raise CatalogError(f"{where}: target {p.target!r} cannot be resized in place; "
                           f"resizable targets: {', '.join(sizable) or 'none'}")


@dataclass(frozen=True)
class _Resolved:
    """A target's model ids."""

    bodies: np.ndarray
    visual: np.ndarray  # visual geoms (group 1, no contacts)
    collision: np.ndarray  # geoms that take part in contacts
    resize: str | None


class SceneEditor:
    """Applies catalog perturbations to a compiled MuJoCo model in place.

    :param model: the loaded model (edited in place).
    :param spec: the task, which names the targets.
    """

    def __init__(self, model: mujoco.MjModel, spec: TaskSpec) -> None:
        self.model = model
        self.spec = spec
        self._targets = {name: self._resolve(target.bodies, target.resize)
                         for name, target in spec.targets.items()}
        self._nominal = {f: getattr(model, f).copy() for f in RESTORED_FIELDS}
        self._nominal_stat = {f: np.copy(getattr(model.stat, f)) for f in _STAT_FIELDS}
        self._scratch = mujoco.MjData(model)
        table = self._targets.get("table")
        self.table_top_z = None if table is None else float(
            model.body_pos[table.bodies[0], 2] + model.geom_size[table.collision[0], 2])

    # ------------------------------------------------------------------ public

    def rebind(self, model: mujoco.MjModel) -> None:
        """Edit ``model`` from now on: a rebuild of the same scene (same ids); the nominal record
        taken at construction is kept, so :meth:`restore` still returns to the nominal scene."""
        self.model = model
        self._scratch = mujoco.MjData(model)

    def visual_geoms(self, target: str) -> np.ndarray:
        """Ids of the target's visual geoms."""
        return self._targets[target].visual

    def restore(self) -> None:
        """Return every edited array to its nominal value (exactly)."""
        for f, value in self._nominal.items():
            getattr(self.model, f)[...] = value
        for f, value in self._nominal_stat.items():
            setattr(self.model.stat, f, value)

    def apply(self, p: Perturbation) -> None:
        """Apply one perturbation on top of the current edits.

        :raises CatalogError: see :func:`check_perturbation`.
        """
        check_perturbation(self.spec, p)
        if p.kind == "light":
            self.model.light_diffuse[:] = np.asarray(p.value, dtype=float)
            return
        target = self._targets[p.target]
        if p.kind == "color":
            self.model.geom_rgba[target.visual] = np.asarray(p.value, dtype=float)
            self.model.geom_matid[target.visual] = -1
        elif target.resize == "object":
            self._resize_object(target, np.asarray(p.value, dtype=float))
        elif target.resize == "table":
            self._resize_table(target, np.asarray(p.value, dtype=float))
        else:
            self._resize_fixed(target, np.asarray(p.value, dtype=float))

    def bounds(self, target: str, nominal: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Centre and half-sizes of the box bounding the target's collision geoms (body frame).

        :param target: a task target (not ``light``).
        :param nominal: the nominal instead of the current geometry.
        """
        src = self._nominal if nominal else {"geom_aabb": self.model.geom_aabb,
                                             "geom_pos": self.model.geom_pos}
        lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
        for g in self._targets[target].collision:
            rot = _quat_mat(self.model.geom_quat[g])
            center = src["geom_pos"][g] + rot @ src["geom_aabb"][g, :3]
            half = np.abs(rot) @ src["geom_aabb"][g, 3:]
            lo, hi = np.minimum(lo, center - half), np.maximum(hi, center + half)
        return (hi + lo) / 2.0, (hi - lo) / 2.0

    def body_id(self, target: str) -> int:
        """The first (root) body of a target."""
        return int(self._targets[target].bodies[0])

    def collision_geoms(self, target: str) -> np.ndarray:
        """Ids of the target's collision geoms."""
        return self._targets[target].collision

    def digest(self) -> str:
        """SHA-256 over :data:`DIGEST_FIELDS`: equal digests mean an equal scene."""
        h = hashlib.sha256()
        for f in DIGEST_FIELDS:
            arr = np.ascontiguousarray(getattr(self.model, f))
            h.update(f.encode())
            h.update(arr.tobytes())
        return h.hexdigest()

    # ------------------------------------------------------------------ internals

    def _resolve(self, names: tuple[str, ...], resize: str | None) -> _Resolved:
        m = self.model
        all_bodies = [m.body(i).name for i in range(m.nbody)]
        bodies = [i for i, b in enumerate(all_bodies)
                  if any(b.startswith(n) if n.endswith("_") else b == n for n in names)]
        if not bodies:
            raise RuntimeError(f"no body matches {names} in the robosuite model")
        in_target = np.isin(m.geom_bodyid, bodies)
        contacts = (m.geom_contype != 0) | (m.geom_conaffinity != 0)
        visual = np.flatnonzero(in_target & ~contacts & (m.geom_group == 1))
        collision = np.flatnonzero(in_target & contacts)
        if resize is not None:
            boxes = m.geom_type[np.r_[visual, collision]] == mujoco.mjtGeom.mjGEOM_BOX
            if len(collision) != 1 or (not boxes.all() and resize != "table"):
                raise RuntimeError(f"target bodies {names} are not a single box; they cannot "
                                   f"use resize rule {resize!r}")
        return _Resolved(np.array(bodies), visual, collision, resize)

    def _box_geoms(self, target: _Resolved) -> np.ndarray:
        """The target's collision box and the visual boxes that share its shape."""
        m = self.model
        col = target.collision[0]
        same = [g for g in target.visual if m.geom_type[g] == mujoco.mjtGeom.mjGEOM_BOX
                and np.allclose(m.geom_size[g], self._nominal["geom_size"][col])]
        return np.r_[target.collision, same].astype(int)

    def _set_box_size(self, geoms: np.ndarray, half: np.ndarray) -> None:
        m = self.model
        m.geom_size[geoms] = half
        m.geom_rbound[geoms] = np.linalg.norm(half)
        m.geom_aabb[geoms, :3] = 0.0
        m.geom_aabb[geoms, 3:] = half

    def _resize_object(self, target: _Resolved, half: np.ndarray) -> None:
        m = self.model
        body, col = int(target.bodies[0]), int(target.collision[0])
        nominal_half = self._nominal["geom_size"][col]
        self._set_box_size(self._box_geoms(target), half)
        mass = self._nominal["body_mass"][body] * np.prod(half) / np.prod(nominal_half)
        sq = half ** 2
        inertia_body = np.diag(mass / 3.0 * np.array([sq[1] + sq[2], sq[0] + sq[2], sq[0] + sq[1]]))
        rot = _quat_mat(m.body_iquat[body])
        m.body_mass[body] = mass
        m.body_inertia[body] = np.diag(rot.T @ inertia_body @ rot)
        self._refit_bvh(body)
        mujoco.mj_setConst(m, self._scratch)

    def _resize_table(self, target: _Resolved, half: np.ndarray) -> None:
        m = self.model
        body = int(target.bodies[0])
        top = self.table_top_z
        boxes = [g for g in np.r_[target.collision, target.visual]
                 if m.geom_type[g] == mujoco.mjtGeom.mjGEOM_BOX]
        self._set_box_size(np.array(boxes), half)
        m.body_pos[body, 2] = top - half[2]
        sites = np.flatnonzero(m.site_bodyid == body)
        m.site_pos[sites, 2] = half[2]
        leg_half = top / 2.0 - half[2] / 2.0  # legs reach from the floor (z=0) to the top's bottom
        legs = [g for g in target.visual if m.geom_type[g] == mujoco.mjtGeom.mjGEOM_CYLINDER]
        for g in legs:
            nominal_pos = self._nominal["geom_pos"][g]
            for axis in (0, 1):
                inset = _LEG_INSET * np.sign(nominal_pos[axis])
                m.geom_pos[g, axis] = (np.sign(inset) * half[axis] - inset
                                       if half[axis] > abs(2 * inset) else 0.0)
            m.geom_pos[g, 2] = -leg_half
            m.geom_size[g, 1] = leg_half
            m.geom_rbound[g] = np.hypot(m.geom_size[g, 0], leg_half)
            m.geom_aabb[g, 3:] = (m.geom_size[g, 0], m.geom_size[g, 0], leg_half)
        self._refit_bvh(body)

    def _resize_fixed(self, target: _Resolved, half: np.ndarray) -> None:
        m = self.model
        geoms = self._box_geoms(target)
        nominal_half = self._nominal["geom_size"][target.collision[0]]
        self._set_box_size(geoms, half)
        m.geom_pos[geoms, 2] = self._nominal["geom_pos"][geoms, 2] + half[2] - nominal_half[2]
        self._refit_bvh(int(target.bodies[0]))

    def _refit_bvh(self, body: int) -> None:
        """Recompute the body's bounding-volume hierarchy boxes (in its inertial frame)."""
        m = self.model
        adr, num = m.body_bvhadr[body], m.body_bvhnum[body]
        rot_i, pos_i = _quat_mat(m.body_iquat[body]), m.body_ipos[body]
        for node in range(adr + num - 1, adr - 1, -1):  # children come after their parent
            g = m.bvh_nodeid[node]
            if g >= 0:
                rot = rot_i.T @ _quat_mat(m.geom_quat[g])
                center = rot_i.T @ (m.geom_pos[g] + _quat_mat(m.geom_quat[g]) @ m.geom_aabb[g, :3]
                                    - pos_i)
                m.bvh_aabb[node] = np.r_[center, np.abs(rot) @ m.geom_aabb[g, 3:]]
            else:
                kids = m.bvh_aabb[adr + m.bvh_child[node]]
                lo = (kids[:, :3] - kids[:, 3:]).min(axis=0)
                hi = (kids[:, :3] + kids[:, 3:]).max(axis=0)
                m.bvh_aabb[node] = np.r_[(lo + hi) / 2.0, (hi - lo) / 2.0]


def _quat_mat(quat: np.ndarray) -> np.ndarray:
    mat = np.zeros(9)
    mujoco.mju_quat2Mat(mat, quat)
    return mat.reshape(3, 3)
