"""Factor families in the robosuite world: every family applies, changes what it should and
restores bit for bit; digital corruptions reach the policy's image and the video alike."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from robomd_diagnoser.catalog import load_catalog
from robomd_diagnoser.paths import find_config
from robomd_sim_bridge.world import RobosuiteWorld

CATALOG = load_catalog(find_config("catalogs/lift_factors.yaml"))
FAMILIES = {f.name: f for f in CATALOG.space.families}


class Still:
    """Holds the arm still (gripper open); records the images it is given."""

    uses_image = True

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def reset(self) -> None:
        self.seen = []

    def act(self, obs: dict) -> np.ndarray:
        self.seen.append(obs["image"])
        return np.r_[np.zeros(6), -1.0]


@pytest.fixture(scope="module")
def world():
    w = RobosuiteWorld(CATALOG, Still(), camera_size=64)
    yield w
    w.close()


@pytest.fixture(scope="module")
def nominal(world):
    world.reset(0)
    m, d = world.model, world.data
    arrays = {n: getattr(m, n).copy() for n in dir(m)
              if not n.startswith("_") and isinstance(getattr(m, n, None), np.ndarray)}
    cube = world.object_state("cube")
    return {"digest": world.model_digest(), "arrays": arrays, "image": world.observe(),
            "cube_pos": cube.world_pos, "cube_rot": cube.world_rot, "qpos": d.qpos.copy()}


def _yaw(rot: np.ndarray) -> float:
    return float(np.arctan2(rot[1, 0], rot[0, 0]))


def _check(world, nominal, family, level) -> None:
    """Assert the level changed what its factor says (and, for model edits, only that)."""
    m, v, f = world.model, level.value, family.factor
    n = nominal["arrays"]
    cam = m.camera(world.camera).id
    if f in ("object_color", "table_color", "robot_color"):
        vis = world.editor.visual_geoms(level.target)
        assert np.allclose(m.geom_rgba[vis], v) and (m.geom_matid[vis] == -1).all()
    elif f == "table_texture":
        assert m.material(int(m.geom_matid[world.editor.visual_geoms("table")[0]])).name == v
    elif f == "light_color":
        assert np.allclose(m.light_diffuse, v)
    elif f == "light_intensity":
        assert np.allclose(m.light_diffuse, n["light_diffuse"] * v[0])
    elif f == "light_direction":
        assert not np.allclose(m.light_dir, n["light_dir"])
        assert np.allclose(np.linalg.norm(m.light_dir, axis=1), 1.0)
    elif f in ("camera_position", "camera_orientation"):
        moved = np.flatnonzero(np.any(m.cam_pos != n["cam_pos"], axis=1)
                               | np.any(m.cam_quat != n["cam_quat"], axis=1))
        assert list(moved) == [cam]  # the rendering camera only
        if f == "camera_position":
            assert np.allclose(m.cam_pos[cam] - n["cam_pos"][cam], v)
    elif f == "object_position":
        shift = world.object_state("cube").world_pos - nominal["cube_pos"]
        assert np.allclose(shift[:2], v, atol=1e-9)
    elif f == "object_yaw":
        turn = _yaw(world.object_state("cube").world_rot) - _yaw(nominal["cube_rot"])
        assert np.isclose(np.degrees(turn), v[0])
    elif f == "object_size":
        col = world.editor.collision_geoms("cube")
        assert np.allclose(m.geom_size[col], n["geom_size"][col] * np.asarray(v))
    elif f == "object_mass":
        body = world.editor.body_id("cube")
        assert np.isclose(m.body_mass[body], n["body_mass"][body] * v[0])
        assert np.allclose(m.body_inertia[body], n["body_inertia"][body] * v[0])
    elif f == "object_friction":
        col = world.editor.collision_geoms("cube")
        assert np.allclose(m.geom_friction[col, 0], n["geom_friction"][col, 0] * v[0])
    elif f == "distractors":
        placed = [i for i in range(4) if world.data.xpos[m.body(f"distractor{i}").id][2] > 0]
        assert placed == list(range(int(v[0])))
        assert all(world.data.xpos[m.body(f"distractor{i}").id][2] > world.table_top_z
                   for i in placed)
    elif f == "robot_joint_offset":
        arm = world.factors._arm_qpos
        assert np.allclose(world.data.qpos[arm] - nominal["qpos"][arm], v[0])
    elif f.startswith("image_"):
        assert world.editor.digest() == world.editor.digest()  # model untouched:
        assert all(np.array_equal(getattr(m, k), a, equal_nan=True) for k, a in n.items()
                   if k in ("geom_rgba", "light_diffuse", "cam_pos"))
    elif f == "action_noise":
        world.execute(5, 0)
        moved = world.data.qpos[world.factors._arm_qpos] - nominal["qpos"][world.factors._arm_qpos]
        world.reset(0)
        world.execute(5, 0)
        still = world.data.qpos[world.factors._arm_qpos] - nominal["qpos"][world.factors._arm_qpos]
        world.apply([level.full_name])
        assert np.abs(moved).max() > 2 * np.abs(still).max()
    else:
        pytest.fail(f"no check for factor {f}")


VISIBLE = {"object_color", "table_color", "robot_color", "table_texture", "light_color",
           "light_intensity", "light_direction", "camera_position", "camera_orientation",
           "object_position", "object_size", "distractors", "image_noise", "image_blur",
           "image_brightness", "image_contrast"}


@pytest.mark.parametrize("name", list(FAMILIES))
def test_family_applies_changes_what_it_should_and_restores_exactly(world, nominal, name):
    family = FAMILIES[name]
    level = family.levels[0 if name == "light_intensity" else len(family.levels) // 2]
    world.reset(0)
    world.apply([level.full_name])
    assert world.perturbations == (level.full_name,)
    assert world.model_digest() != nominal["digest"]
    _check(world, nominal, family, level)
    if family.factor in VISIBLE:
        assert np.abs(world.observe().astype(int) - nominal["image"]).max() > 20
    world.reset(0)
    assert world.model_digest() == nominal["digest"]
    for key, value in nominal["arrays"].items():
        assert np.array_equal(getattr(world.model, key), value, equal_nan=True), (name, key)
    assert np.array_equal(world.observe(), nominal["image"])
    assert np.array_equal(world.data.qpos, nominal["qpos"])


def test_a_pair_applies_both_levels(world, nominal):
    world.apply(["cube_hue_120+table_color_red"])
    assert np.allclose(world.model.geom_rgba[world.editor.visual_geoms("cube")], [0, 1, 0, 1])
    assert np.allclose(world.model.geom_rgba[world.editor.visual_geoms("table")], [1, 0, 0, 1])
    world.reset(0)
    assert world.model_digest() == nominal["digest"]


def test_video_shows_the_corrupted_image_the_policy_saw(world):
    world.reset(0)
    world.apply(["image_noise_0p2"])
    world.record = True
    try:
        world.execute(3, 0)
    finally:
        world.record = False
    seen = world.policy.seen
    assert len(seen) == 3
    for frame, image in zip(world.last_frames, seen, strict=False):
        assert np.array_equal(frame, image)
    clean = world.render(64, camera="frontview")  # other cameras are not corrupted
    assert clean.dtype == np.uint8
    world.reset(0)
    world.execute(3, 0)
    assert not np.array_equal(world.policy.seen[0], seen[0])
    world.apply(["image_noise_0p2"])
    world.execute(3, 0)
    assert np.array_equal(world.policy.seen[0], seen[0])  # seeded by the episode seed


@pytest.mark.parametrize("catalog", ["stack_factors", "pick_place_can_factors"])
def test_other_tasks_apply_every_family_and_restore(catalog):
    cat = load_catalog(find_config(f"catalogs/{catalog}.yaml"))
    w = RobosuiteWorld(cat, camera_size=32)
    try:
        w.reset(0)
        digest = w.model_digest()
        for family in cat.space.families:
            w.apply([family.levels[-1].full_name])
            assert w.model_digest() != digest, family.name
            w.reset(0)
            assert w.model_digest() == digest, family.name
        last = cat[len(cat) - 1]
        w.apply([last.name])
        assert w.perturbations == (last.name,)
    finally:
        w.close()


def test_mass_edit_reaches_the_physics(world):
    world.reset(0)
    world.apply(["cube_mass_20"])
    body = world.editor.body_id("cube")
    assert world.model.body_subtreemass[body] == pytest.approx(
        20 * world.editor._nominal["body_subtreemass"][body])
    mujoco.mj_forward(world.model, world.data)


XML_FIELDS = {"object_color": "geom_rgba", "table_texture": "geom_matid",
              "light_intensity": "light_diffuse", "light_direction": "light_dir",
              "camera_position": "cam_pos", "camera_orientation": "cam_quat",
              "object_mass": "body_mass", "object_friction": "geom_friction",
              "distractors": "body_pos"}


@pytest.mark.parametrize("name", [n for n, f in FAMILIES.items() if f.factor in XML_FIELDS])
def test_xml_rewrite_baseline_builds_the_same_member(world, name):
    """The benchmark's slow path (rewrite the MJCF, rebuild) gives the in-place model."""
    from robomd_sim_bridge.xml_rewrite import apply_by_xml_rewrite

    family = FAMILIES[name]
    member = f"{family.levels[-1].full_name}+image_noise_0p1"
    field = XML_FIELDS[family.factor]
    world.reset(0)
    world.apply([member])
    in_place = getattr(world.model, field).copy()
    apply_by_xml_rewrite(world, [member])
    try:
        assert world.perturbations == (member,)
        assert np.allclose(getattr(world.model, field), in_place, atol=1e-6)
        assert world.factors.digital.image_ops == [("image_noise", 0.1)]
    finally:
        world.load_xml(world.nominal_xml)
        world.reset(0)
