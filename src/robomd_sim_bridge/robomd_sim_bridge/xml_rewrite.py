"""Baseline for benchmarks: apply perturbations the way the RoboMD paper's code does.

The paper's environments take the simulator's MJCF text, rewrite the changed attributes with
ElementTree and reload the simulator from the new text (robomimic's ``reset_to({"model": xml})``,
i.e. robosuite's ``reset_from_xml_string``) for every perturbation. This module does the same
edits as :class:`robomd_sim_bridge.perturb.SceneEditor` (same geoms, same values; sizes on both the
collision and the visual box, which the paper's code does not do) through that path, so
``world.apply(names)`` and :func:`apply_by_xml_rewrite` can be timed against each other on equal
terms. Factor-space members are rewritten the same way (colours, sizes, textures, lights, the
camera, mass as geom density, friction, distractor positions); their placement and digital levels
are not part of the model and go to the world's factor editor in both paths. It is not used by
campaigns.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

import mujoco
import numpy as np

from robomd_diagnoser.catalog import Perturbation
from robomd_diagnoser.space import MEMBER_KIND, Level
from robomd_sim_bridge.factors import euler_mat as _euler_mat
from robomd_sim_bridge.perturb import check_perturbation
from robomd_sim_bridge.tasks import LIGHT_TARGET
from robomd_sim_bridge.world import RobosuiteWorld


def _attr(values: Sequence[float]) -> str:
    return " ".join(repr(float(v)) for v in values)


def apply_by_xml_rewrite(world: RobosuiteWorld, perturbations: Sequence[str]) -> None:
    """Set the scene's perturbations by rewriting the nominal MJCF and rebuilding the simulator.

    Colours set ``rgba`` and drop ``material`` on the target's visual geoms, lights set
    ``diffuse``, sizes set ``size`` on the target's boxes (tables and pegs keep their top surface
    and bottom, as in place; the table's visual legs are not moved). ``world.load_xml(
    world.nominal_xml)`` returns to nominal.

    :param world: the world whose simulator is rebuilt.
    :param perturbations: catalog names, applied in order on the nominal scene.
    :raises CatalogError: for an unknown name or an entry the scene cannot apply.
    """
    perts = [world.catalog[name] for name in perturbations]
    root = ET.fromstring(world.nominal_xml)
    worldbody = root.find("worldbody")
    geoms = list(worldbody.iter("geom"))  # document order is MuJoCo's geom id order
    bodies = {b.get("name"): b for b in worldbody.iter("body")}
    world.factors.restore()
    for p in perts:
        if p.kind == MEMBER_KIND:
            for level in p.edits:
                _rewrite_level(world, level, root, geoms, bodies)
        else:
            check_perturbation(world.spec, p)
            _rewrite_single(world, p, worldbody, geoms, bodies)
    world.load_xml(ET.tostring(root, encoding="unicode"), perturbations)


def _rewrite_single(world: RobosuiteWorld, p: Perturbation, worldbody: ET.Element,
                    geoms: list[ET.Element], bodies: dict[str | None, ET.Element]) -> None:
    if p.kind == "light":
        for light in worldbody.iter("light"):
            light.set("diffuse", _attr(p.value))
    elif p.kind == "color":
        for g in world.editor.visual_geoms(p.target):
            geoms[g].set("rgba", _attr(p.value))
            geoms[g].attrib.pop("material", None)
    else:
        _resize(world, p.target, p.value, geoms, bodies)


def _rewrite_level(world: RobosuiteWorld, level: Level, root: ET.Element,
                   geoms: list[ET.Element], bodies: dict[str | None, ET.Element]) -> None:
    """Write one factor level into the MJCF; placement and digital levels, which are not part
    of the model, go to the world's factor editor (applied by the episode reset that follows)."""
    m, f, v = world.model, level.factor, level.value
    worldbody = root.find("worldbody")
    lights = list(worldbody.iter("light"))
    single = {"object_color": "color", "table_color": "color", "robot_color": "color",
              "light_color": "light"}.get(f)
    if single is not None:
        target = LIGHT_TARGET if single == "light" else level.target
        _rewrite_single(world, Perturbation(level.full_name, level.text, single, target, v),
                        worldbody, geoms, bodies)
    elif f == "object_size":
        half = world.editor.bounds(level.target, nominal=True)[1] * np.asarray(v)
        _resize(world, level.target, tuple(half), geoms, bodies)
    elif f == "light_intensity":
        for i, light in enumerate(lights):
            rgb = [float(x) for x in (light.get("diffuse") or _attr(m.light_diffuse[i])).split()]
            light.set("diffuse", _attr(np.asarray(rgb) * v[0]))
    elif f == "light_direction":
        rot = _euler_mat(np.radians([v[0], v[1], 0.0]))
        for i, light in enumerate(lights):
            light.set("dir", _attr(rot @ m.light_dir[i]))
    elif f == "table_texture":
        for g in world.editor.visual_geoms("table"):
            if m.geom_type[g] == mujoco.mjtGeom.mjGEOM_BOX:
                geoms[g].set("material", v)
    elif f in ("camera_position", "camera_orientation"):
        cam = next(c for c in root.iter("camera") if c.get("name") == world.camera)
        cid = m.camera(world.camera).id
        if f == "camera_position":
            cam.set("pos", _attr(m.cam_pos[cid] + np.asarray(v)))
        else:
            q, out = np.zeros(4), np.zeros(4)
            mujoco.mju_mat2Quat(q, _euler_mat(np.radians(v)).reshape(-1))
            mujoco.mju_mulQuat(out, m.cam_quat[cid], q)
            cam.set("quat", _attr(out))
    elif f == "object_mass":
        for g in world.editor.collision_geoms(level.target):
            geoms[g].set("density", _attr([float(geoms[g].get("density") or 1000.0) * v[0]]))
    elif f == "object_friction":
        for g in world.editor.collision_geoms(level.target):
            fr = m.geom_friction[g].copy()
            fr[0] *= v[0]
            geoms[g].set("friction", _attr(fr))
    elif f == "distractors":
        spots = world.factors.distractor_spots()
        for i in range(int(v[0])):
            bodies[f"distractor{i}"].set("pos", _attr(spots[i]))
    else:  # placement and digital levels are not in the model
        world.factors.apply_level(level)


def _resize(world: RobosuiteWorld, target: str, half: Sequence[float], geoms: list[ET.Element],
            bodies: dict[str | None, ET.Element]) -> None:
    """Resize a target's boxes in the XML with the placement rules of the in-place editor."""
    m, editor = world.model, world.editor
    rule = world.spec.targets[target].resize
    collision = editor.collision_geoms(target)
    boxes = [g for g in (*collision, *editor.visual_geoms(target))
             if m.geom_type[g] == mujoco.mjtGeom.mjGEOM_BOX]
    if rule != "table":  # objects and pegs: the boxes shaped like the collision box
        boxes = [g for g in boxes if geoms[g].get("size") == geoms[collision[0]].get("size")]
    old_half = [float(v) for v in geoms[collision[0]].get("size").split()]
    for g in boxes:
        geoms[g].set("size", _attr(half))
    dz = half[2] - old_half[2]
    if rule == "table":  # keep the top surface: lower the body by the thickness change
        body = bodies[m.body(editor.body_id(target)).name]
        pos = [float(v) for v in body.get("pos").split()]
        body.set("pos", _attr([pos[0], pos[1], pos[2] - dz]))
    elif rule == "fixed":  # keep the bottom: raise the boxes by the height change
        for g in boxes:
            pos = [float(v) for v in (geoms[g].get("pos") or "0 0 0").split()]
            geoms[g].set("pos", _attr([pos[0], pos[1], pos[2] + dz]))
