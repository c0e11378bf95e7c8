"""Perturbation spaces: family validation, member naming, lazy indexing, stability."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys

import pytest

from robomd_diagnoser.catalog import CatalogError, load_catalog, parse_catalog
from robomd_diagnoser.paths import find_config
from robomd_diagnoser.space import FACTORS, MEMBER_KIND

FACTOR_CATALOGS = ["lift_factors", "stack_factors", "pick_place_can_factors"]


def _doc(*families: dict, order: int = 2, **extra) -> dict:
    doc = {"task": "lift", "families": list(families) or [
        {"name": "cube_hue", "factor": "object_color", "target": "cube",
         "hue": {"start": 0, "stop": 240, "num": 3}},
        {"name": "table_color", "factor": "table_color", "values": [[1, 0, 0], [0, 0, 1]],
         "names": ["red", "blue"]},
        {"name": "light_intensity", "factor": "light_intensity",
         "linspace": {"start": 0.5, "stop": 1.5, "num": 3}},
        {"name": "noise", "factor": "image_noise", "values": [0.1]},
    ], "combinations": {"order": order}}
    doc.update(extra)
    return doc


def test_levels_names_and_texts_are_generated() -> None:
    space = parse_catalog(_doc()).space
    fams = {f.name: f for f in space.families}
    assert [lv.name for lv in fams["cube_hue"].levels] == ["0", "120", "240"]
    assert fams["cube_hue"].levels[1].value == (0.0, 1.0, 0.0, 1.0)
    assert fams["cube_hue"].levels[1].text == "Change cube hue to 120 degrees"
    assert [lv.name for lv in fams["light_intensity"].levels] == ["0p5", "1", "1p5"]
    assert fams["table_color"].levels[0].text == "Change table color to red"
    assert fams["noise"].digital and not fams["cube_hue"].digital


def test_member_contract_name_text_levels() -> None:
    catalog = parse_catalog(_doc())
    p = catalog["cube_hue_120+table_color_red"]
    assert p.kind == MEMBER_KIND
    assert p.levels == (("cube_hue", "120"), ("table_color", "red"))
    assert p.text == "Change cube hue to 120 degrees; change table color to red"
    assert [e.factor for e in p.edits] == ["object_color", "table_color"]
    assert catalog["table_color_blue"].levels == (("table_color", "blue"),)
    with pytest.raises(CatalogError, match="table_color_red\\+cube_hue_120"):
        catalog["table_color_red+cube_hue_120"]  # levels go in family order


def test_size_and_index_round_trip_match_brute_force() -> None:
    space = parse_catalog(_doc(order=3)).space
    sizes = [len(f.levels) for f in space.families]
    expected = sum(math.prod(c) for k in (1, 2, 3) for c in itertools.combinations(sizes, k))
    assert len(space) == expected
    names = [space.member(i).name for i in range(len(space))]
    assert len(set(names)) == len(names)
    assert all(space.index_of(n) == i for i, n in enumerate(names))
    assert space.size_by_order() == {1: 9, 2: 29, 3: 39}
    assert [space.member(i).order for i in space.order_range(2)] == [2] * 29
    with pytest.raises(IndexError):
        space.member(len(space))


def test_catalog_indexes_singles_then_members() -> None:
    doc = _doc(perturbations=[{"name": "cube_red", "text": "Change cube color to red",
                               "kind": "color", "target": "cube", "value": [1, 0, 0]}])
    catalog = parse_catalog(doc)
    assert len(catalog) == 1 + len(catalog.space)
    assert catalog[0].name == "cube_red" and catalog.index("cube_red") == 0
    assert catalog[1].name == "cube_hue_0" and catalog.index("cube_hue_0") == 1
    last = catalog[len(catalog) - 1]
    assert catalog.index(last.name) == len(catalog) - 1 and "+" in last.name
    assert catalog.names == [p.name for p in catalog]
    assert "cube_hue_0+noise_0p1" in catalog and "cube_hue_7" not in catalog


def test_sample_spreads_over_orders_and_grows_as_a_prefix() -> None:
    space = parse_catalog(_doc(order=3)).space
    sample = space.sample(12, seed=3)
    assert len(set(sample)) == 12
    assert {space.member(i).order for i in sample} == {1, 2, 3}
    assert space.sample(20, seed=3)[:12] == sample
    assert space.sample(12, seed=4) != sample
    assert sorted(space.sample(10_000, seed=0)) == list(range(len(space)))


def test_a_hundred_thousand_member_space_is_indexed_without_listing_it() -> None:
    families = [{"name": f"f{i}", "factor": factor, "values": [0.02 * (j + 1) for j in range(10)]}
                for i, factor in enumerate(["light_intensity", "image_noise", "image_blur",
                                            "image_contrast", "action_noise"])]
    space = parse_catalog(_doc(*families, order=5)).space
    assert len(space) == 11 ** 5 - 1  # every subset of families, one level each
    assert len(space) > 100_000
    m = space.member(123_456)
    assert space.index_of(m.name) == 123_456
    info = space.describe()
    assert info["members"] == len(space) and info["order"] == 5


def test_enumeration_is_stable_across_processes() -> None:
    path = find_config("catalogs/lift_factors.yaml")
    code = ("import json, sys\n"
            "from robomd_diagnoser.catalog import load_catalog\n"
            f"c = load_catalog({str(path)!r})\n"
            "idx = [0, 1, 777, 3001, len(c) - 1]\n"
            "print(json.dumps([len(c), [c[i].name for i in idx], c.space.sample(30, 0)]))\n")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={"PYTHONHASHSEED": str(s), **_env()}).stdout
            for s in (1, 2)]
    assert runs[0] == runs[1]
    here = load_catalog(path)
    n, names, sample = json.loads(runs[0])
    assert n == len(here) and names[2] == here[777].name and sample == here.space.sample(30, 0)


def _env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}


@pytest.mark.parametrize("family, match", [
    ({"name": "cube_glow", "factor": "glow", "values": [1]},
     r"families\[0\] \(cube_glow\)\.factor: unknown factor 'glow'; use one of object_color"),
    ({"name": "dim", "factor": "light_intensity", "values": []},
     r"families\[0\] \(dim\)\.values: .*empty range"),
    ({"name": "dim", "factor": "light_intensity", "linspace": {"start": 1, "stop": 2, "num": 0}},
     r"families\[0\] \(dim\)\.linspace\.num: .*empty range"),
    ({"name": "heavy", "factor": "object_mass", "target": "cube", "values": [2, 50]},
     r"families\[0\] \(heavy\)\.values\[1\]: 50 is outside the physical range \[0\.1, 20\]"),
    ({"name": "huge", "factor": "object_size", "target": "cube", "values": [[1, 1, 9]]},
     r"huge\)\.values\[0\]: 9 is outside the physical range"),
    ({"name": "cube_mass", "factor": "object_mass", "values": [2]},
     r"cube_mass\)\.target: factor object_mass needs the object"),
    ({"name": "t", "factor": "table_color", "hue": [0, 400]}, r"\(t\)\.hue\[1\]: a hue"),
    ({"name": "t", "factor": "table_color", "values": [[1, 0, 0]], "names": ["Red"]},
     r"\(t\)\.names\[0\]"),
])
def test_bad_families_are_refused_naming_the_entry(family, match) -> None:
    with pytest.raises(CatalogError, match=match):
        parse_catalog(_doc(family, order=1))


def test_a_factor_combined_with_itself_is_refused() -> None:
    a = {"name": "cube_hue", "factor": "object_color", "target": "cube", "hue": [0, 120]}
    b = {"name": "cube_rgb", "factor": "object_color", "target": "cube", "values": [[1, 0, 0]]}
    light = {"name": "dim", "factor": "light_intensity", "values": [0.5]}
    with pytest.raises(CatalogError, match="'cube_rgb' and 'cube_hue' both set object_color "
                                           "of 'cube'; a factor cannot be combined with itself"):
        parse_catalog(_doc(a, b, light))
    with pytest.raises(CatalogError, match="family 'dim' is listed twice"):
        parse_catalog(_doc(a, light, combinations={"order": 2, "families": ["dim", "dim"]}))
    ok = parse_catalog(_doc(a, b, light, combinations={"order": 2,
                                                       "families": ["cube_hue", "dim"]}))
    assert len(ok.space) == 2 + 1 + 1 + 2  # every level alone, then cube_hue x dim
    assert parse_catalog(_doc(a, b, order=1)).space is not None  # alone they are fine


def test_level_names_may_not_collide() -> None:
    single = {"name": "dim_0p5", "text": "Dim", "kind": "light", "target": "light",
              "value": [0.3, 0.3, 0.3]}
    with pytest.raises(CatalogError, match="'dim_0p5' is also defined by perturbations"):
        parse_catalog(_doc({"name": "dim", "factor": "light_intensity", "values": [0.5]},
                           order=1, perturbations=[single]))


@pytest.mark.parametrize("name", FACTOR_CATALOGS)
def test_shipped_factor_catalogs_are_large_enough(name) -> None:
    catalog = load_catalog(find_config(f"catalogs/{name}.yaml"))
    assert len(catalog.space.families) >= 12
    assert len(catalog.space) >= 5000 and catalog.space.order >= 2


def test_every_factor_is_used_in_lift_factors() -> None:
    space = load_catalog(find_config("catalogs/lift_factors.yaml")).space
    assert {f.factor for f in space.families} == set(FACTORS)


def test_real_lift_has_digital_families() -> None:
    catalog = load_catalog(find_config("catalogs/real_lift.yaml"))
    assert catalog.world == "real" and len(catalog.perturbations) == 11
    assert catalog.space is not None and all(f.digital for f in catalog.space.families)


def test_a_sweep_visits_singles_then_members_alternating_orders() -> None:
    from robomd_diagnoser.sweep import NOMINAL, sweep_jobs, swept_names

    doc = _doc(order=3, perturbations=[{"name": "cube_red", "text": "Red cube", "kind": "color",
                                        "target": "cube", "value": [1, 0, 0]}])
    catalog = parse_catalog(doc)
    names = swept_names(catalog, seed=0)
    assert names[0] == "cube_red" and sorted(names[1:]) == sorted(
        m.name for m in catalog.space)
    assert [n.count("+") + 1 for n in names[1:4]] == [1, 2, 3]
    assert names == swept_names(parse_catalog(doc), seed=0)  # resumable: same order again
    jobs = sweep_jobs(catalog, 2, 0, 10)
    assert jobs[0].key == f"sweep/{NOMINAL}/0" and jobs[1].perturbations == ("cube_red",)
    assert len(jobs) == 2 * (1 + len(catalog))


def test_space_describe_command(capsys, tmp_path) -> None:
    import argparse

    from robomd_diagnoser.cli.space import describe

    path = find_config("catalogs/lift_factors.yaml")
    assert describe(argparse.Namespace(catalog=path, json=True)) == 0
    info = json.loads(capsys.readouterr().out)
    assert len(info["families"]) >= 12 and info["members"] >= 5000 and info["order"] == 2
    assert info["members_by_order"]["1"] == sum(len(f["levels"]) for f in info["families"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: lift\nfamilies:\n  - {name: x, factor: glow, values: [1]}\n")
    assert describe(argparse.Namespace(catalog=bad, json=False)) == 2
    assert "families[0] (x).factor: unknown factor 'glow'" in capsys.readouterr().err
