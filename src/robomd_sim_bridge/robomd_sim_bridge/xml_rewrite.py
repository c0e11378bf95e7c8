"""Baseline for benchmarks: apply perturbations the way the RoboMD paper's code does.

The paper's environments take the simulator's MJCF text, rewrite the changed attributes with
ElementTree and reload the simulator from the new text (robomimic's ``reset_to({"model": xml})``,
i.e. robosuite's ``reset_from_xml_string``) for every perturbation. This module does the same
edits as :class:`robomd_sim_bridge.perturb.SceneEditor` (same geoms, same values; sizes on both the
collision and the visual box, which the paper's code does not do) through that path, so
``world.apply(names)`` and :func:`apply_by_xml_rewrite` can be timed against each other on equal
terms. It is not used by campaigns.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

import mujoco

from robomd_sim_bridge.perturb import check_perturbation
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
    editor = world.editor
    for p in perts:
        check_perturbation(world.spec, p)
        if p.kind == "light":
            for light in worldbody.iter("light"):
                light.set("diffuse", _attr(p.value))
        elif p.kind == "color":
            for g in editor.visual_geoms(p.target):
                geoms[g].set("rgba", _attr(p.value))
                geoms[g].attrib.pop("material", None)
        else:
            _resize(world, p.target, p.value, geoms, bodies)
    world.load_xml(ET.tostring(root, encoding="unicode"), perturbations)


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
