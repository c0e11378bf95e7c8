"""RobosuiteWorld on Lift: in-place perturbations, exact restore, rendering, rollout control."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import mujoco
import numpy as np
import pytest

from robomd_diagnoser.catalog import CatalogError, load_catalog, parse_catalog
from robomd_diagnoser.paths import find_config
from robomd_diagnoser.world import RolloutStatus, World
from robomd_sim_bridge.world import PRIVILEGED_KEYS, RobosuiteWorld
from robomd_sim_bridge.xml_rewrite import apply_by_xml_rewrite

LIFT = find_config("catalogs/lift.yaml")
#: target -> (body, names of its box geoms in robosuite's XML)
XML_GEOMS = {"cube": ("cube_main", ("cube_g0", "cube_g0_vis")),
             "table": ("table", ("table_collision", "table_visual"))}
SEVERAL = ["cube_large", "table_long_narrow", "cube_blue", "table_red", "robot_cyan", "light_red",
           "cube_bar"]


class Still:
    """A policy that holds the arm still (gripper open) and never needs images."""

    uses_image = False

    def reset(self) -> None:
        pass

    def act(self, obs: dict) -> np.ndarray:
        return np.r_[np.zeros(6), -1.0]


@pytest.fixture(scope="module")
def world():
    w = RobosuiteWorld(load_catalog(LIFT), Still(), camera_size=64)
    yield w
    w.close()


@pytest.fixture(autouse=True)
def nominal(world):
    world.reset(0)
    world.policy = Still()
    world.record = False
    yield


def _all_arrays(model: mujoco.MjModel) -> dict[str, np.ndarray]:
    out = {}
    for name in dir(model):
        value = getattr(model, name, None)
        if not name.startswith("_") and isinstance(value, np.ndarray):
            out[name] = value.copy()
    return out


def _geoms(world: RobosuiteWorld, body: str, collision: bool) -> np.ndarray:
    m = world.model
    contacts = (m.geom_contype != 0) | (m.geom_conaffinity != 0)
    return np.flatnonzero((m.geom_bodyid == m.body(body).id) & (contacts == collision))


def test_is_a_world(world) -> None:
    assert isinstance(world, World)
    assert world.perturbations == ()


def test_reset_restores_the_nominal_model_exactly(world) -> None:
    nominal_digest = world.model_digest()
    nominal_arrays = _all_arrays(world.model)
    world.apply(SEVERAL)
    assert world.perturbations == tuple(SEVERAL)
    assert world.model_digest() != nominal_digest
    world.reset(5)
    assert world.perturbations == ()
    assert world.model_digest() == nominal_digest
    after = _all_arrays(world.model)
    changed = [k for k, v in nominal_arrays.items()
               if not np.array_equal(v, after[k], equal_nan=v.dtype.kind == "f")]
    assert changed == []


def test_apply_sets_exactly_the_given_list(world) -> None:
    world.apply(["cube_large", "table_red"])
    world.apply(["table_red"])
    digest = world.model_digest()
    world.reset(0)
    world.apply(["table_red"])
    assert world.model_digest() == digest  # cube_large did not stay behind


@pytest.mark.parametrize("name, body", [("cube_blue", "cube_main"), ("table_green", "table")])
def test_color_sets_rgba_and_clears_material_of_visual_geoms(world, name, body) -> None:
    visual = _geoms(world, body, collision=False)
    assert (world.model.geom_matid[visual] >= 0).any()
    world.apply([name])
    value = np.array(world.catalog[name].value)
    assert np.allclose(world.model.geom_rgba[visual], value)
    assert (world.model.geom_matid[visual] == -1).all()
    collision = _geoms(world, body, collision=True)
    assert not np.allclose(world.model.geom_rgba[collision], value)


def test_robot_color_covers_arm_and_gripper_only(world) -> None:
    m = world.model
    world.apply(["robot_green"])
    green = np.flatnonzero(np.all(m.geom_rgba == [0.0, 1.0, 0.0, 1.0], axis=1))
    bodies = {m.body(m.geom_bodyid[g]).name for g in green}
    assert any(b.startswith("robot0_") for b in bodies)
    assert any(b.startswith("gripper0_") for b in bodies)
    assert all(b.startswith(("robot0_", "gripper0_")) for b in bodies)
    assert all(m.geom_group[g] == 1 for g in green)


def test_light_sets_diffuse_of_scene_lights(world) -> None:
    world.apply(["light_green"])
    assert world.model.nlight >= 1
    assert np.allclose(world.model.light_diffuse, [0.0, 1.0, 0.0])


def test_cube_resize_changes_physics_and_rests_on_the_table(world) -> None:
    col = _geoms(world, "cube_main", collision=True)
    body = world.model.body("cube_main").id
    mass = world.model.body_mass[body]
    world.apply(["cube_large"])
    assert np.allclose(world.model.geom_size[col], [0.04, 0.04, 0.04])
    assert world.model.body_mass[body] > 5 * mass
    world.execute(15, 0)  # the arm holds still; the cube settles
    cube = world.object_state("cube")
    assert cube.world_pos[2] - 0.04 == pytest.approx(world.table_top_z, abs=2e-3)


@pytest.mark.parametrize("name", ["cube_bar", "table_long_narrow", "table_short_wide"])
def test_in_place_resize_matches_a_model_rebuilt_from_xml(world, name) -> None:
    """The target's collision data equal what MuJoCo compiles from the edited XML."""
    p = world.catalog[name]
    body, xml_geoms = XML_GEOMS[p.target]
    root = ET.fromstring(world.env.sim.model.get_xml())
    for g in root.iter("geom"):
        if g.get("name") in xml_geoms:
            g.set("size", " ".join(map(str, p.value)))
    rebuilt = mujoco.MjModel.from_xml_string(ET.tostring(root, encoding="unicode"))
    world.apply([name])
    m = world.model
    geoms = np.r_[_geoms(world, body, collision=True), _geoms(world, body, collision=False)]
    for field in ("geom_size", "geom_rbound", "geom_aabb"):
        assert np.allclose(getattr(m, field)[geoms], getattr(rebuilt, field)[geoms]), field
    b = m.body(body).id
    adr = m.body_bvhadr[b]  # boxes live in the (possibly permuted) inertial frame: sort
    assert np.allclose(np.sort(m.bvh_aabb[adr, 3:]), np.sort(rebuilt.bvh_aabb[adr, 3:]))
    if body == "cube_main":
        assert m.body_mass[b] == pytest.approx(rebuilt.body_mass[b], rel=1e-4)
        assert np.allclose(np.sort(m.body_inertia[b]), np.sort(rebuilt.body_inertia[b]),
                           rtol=1e-4)


def test_table_resize_keeps_the_top_height_and_the_cube_supported(world) -> None:
    col = _geoms(world, "table", collision=True)
    top = world.table_top_z
    world.apply(["table_short_wide"])
    assert np.allclose(world.model.geom_size[col], [0.2, 0.8, 0.025])
    table = world.model.body("table").id
    assert world.data.xpos[table][2] + world.model.geom_size[col[0], 2] == pytest.approx(top)
    world.execute(15, 0)
    cube = world.object_state("cube")
    assert cube.world_pos[2] - cube.half_size[2] == pytest.approx(top, abs=2e-3)


def test_unknown_perturbation_raises_and_changes_nothing(world) -> None:
    world.apply(["table_red"])
    digest = world.model_digest()
    with pytest.raises(CatalogError, match="table_purple"):
        world.apply(["cube_red", "table_purple"])
    assert world.model_digest() == digest
    assert world.perturbations == ("table_red",)


@pytest.mark.parametrize("entry, match", [
    ({"kind": "color", "target": "mug", "value": [1, 0, 0]}, r"unknown target 'mug'.*cube"),
    ({"kind": "size", "target": "robot", "value": [1, 1, 1]}, "cannot be resized"),
    ({"kind": "light", "target": "cube", "value": [1, 0, 0]}, "needs target 'light'"),
    ({"kind": "color", "target": "light", "value": [1, 0, 0]}, "only takes kind 'light'"),
    ({"kind": "object", "target": "cube", "value": "mug"}, "not supported"),
])
def test_catalog_entries_the_scene_cannot_apply_are_refused(entry, match) -> None:
    catalog = parse_catalog({"task": "lift", "perturbations": [
        {"name": "bad", "text": "A bad change", **entry}]})
    with pytest.raises(CatalogError, match=match):
        RobosuiteWorld(catalog)  # refused before the simulator is built


def test_unknown_task_is_refused() -> None:
    catalog = parse_catalog({"task": "threading", "perturbations": [
        {"name": "x", "text": "x", "kind": "light", "target": "light", "value": [1, 1, 1]}]})
    with pytest.raises(CatalogError, match="lift, stack"):
        RobosuiteWorld(catalog)


def test_observe_is_an_upright_uint8_image(world) -> None:
    image = world.observe()
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    world.apply(["table_red"])
    red = world.observe().astype(int)
    redness = red[..., 0] - (red[..., 1] + red[..., 2]) / 2
    assert redness[32:].mean() > redness[:32].mean() + 50  # the table fills the lower half


def test_observation_keys_and_frames(world) -> None:
    obs = world.observation()
    assert set(obs) == {"image", "eef_pos", "gripper", "object", *PRIVILEGED_KEYS} - {"goal_pos"}
    assert obs["eef_pos"].shape == (3,) and obs["gripper"].shape == (1,)
    # the learned-policy object state: position, orientation, position relative to the gripper
    assert obs["object"].shape == (10,)
    assert np.allclose(obs["object"][7:], obs["object_pos"] - obs["eef_pos"])
    assert obs["gripper"][0] == pytest.approx(1.0, abs=0.05)  # starts open
    # robot base frame: the cube lies in front of the base, below it (base sits above the table)
    assert obs["object_pos"][0] > 0.3 and obs["object_pos"][2] < 0


def test_seed_decides_the_placement(world) -> None:
    starts = []
    for seed in (1, 2):
        world.reset(seed)
        starts.append(world.object_state("cube").world_pos)
    world.execute(0, 1)  # a rollout with seed 1 starts where reset(1) left the scene
    assert np.allclose(world.object_state("cube").world_pos, starts[0])
    assert not np.allclose(starts[0], starts[1])


def test_execute_runs_to_the_step_limit_and_judges_failure(world) -> None:
    seen = []
    result = world.execute(5, 0, on_step=lambda step, elapsed: seen.append(step))
    assert result.status is RolloutStatus.COMPLETED and result.steps == 5
    assert seen == [1, 2, 3, 4, 5]
    outcome = world.judge()
    assert not outcome.success and "not met in 5 steps" in outcome.reason


def test_should_stop_cancels_and_is_not_judged(world) -> None:
    calls = []
    result = world.execute(50, 0, should_stop=lambda: len(calls) >= 3,
                           on_step=lambda step, elapsed: calls.append(step))
    assert result.status is RolloutStatus.CANCELLED and result.steps == 3
    with pytest.raises(RuntimeError, match="cancelled"):
        world.judge()


def test_record_keeps_the_rollout_frames(world) -> None:
    world.record = True
    result = world.execute(4, 0)
    assert len(world.last_frames) == result.steps + 1
    assert world.last_frames[0].shape == (64, 64, 3)


@pytest.mark.parametrize("names", [["cube_bar", "cube_green"], ["table_long_narrow", "light_blue"]])
def test_xml_rewrite_baseline_builds_the_same_scene(world, names) -> None:
    world.apply(names)
    in_place = [world.model.geom_size.copy(), world.model.geom_rgba.copy(),
                world.model.light_diffuse.copy(), world.object_state("cube").world_pos]
    apply_by_xml_rewrite(world, names)
    assert world.perturbations == tuple(names)
    rebuilt = [world.model.geom_size, world.model.geom_rgba, world.model.light_diffuse,
               world.object_state("cube").world_pos]
    for a, b in zip(in_place, rebuilt, strict=True):
        assert np.allclose(a, b, atol=1e-6)
    world.load_xml(world.nominal_xml)
    assert world.perturbations == ()
    assert np.allclose(world.model.light_diffuse, 0.7)


def test_torch_stack_can_load_after_the_scene_was_rendered() -> None:
    """Rendering (software EGL loads Mesa's LLVM) and then importing Triton used to segfault,
    e.g. when the text encoder loaded after scene images were rendered for an embedding."""
    code = (
        "import numpy as np\n"
        "from robomd_diagnoser.catalog import load_catalog\n"
        "from robomd_sim_bridge.world import RobosuiteWorld\n"
        f"w = RobosuiteWorld(load_catalog({str(LIFT)!r}), camera_size=32)\n"
        "w.reset(0)\n"
        "assert np.asarray(w.observe()).shape == (32, 32, 3)\n"
        "import importlib.util\n"
        "if importlib.util.find_spec('triton'):\n"
        "    import triton  # noqa: F401\n"
        "w.close()\n"
        "print('survived')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and "survived" in done.stdout, done.stderr[-2000:]
