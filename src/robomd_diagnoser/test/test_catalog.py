"""Catalog validation, and the shipped catalogs in config/catalogs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from robomd_diagnoser.catalog import KINDS, Catalog, CatalogError, load_catalog, parse_catalog
from robomd_diagnoser.paths import find_config

CATALOG_DIR = find_config("catalogs/lift.yaml").parent
SHIPPED = sorted(CATALOG_DIR.glob("*.yaml"))
SIM_TASKS = ("lift", "stack", "pick_place_can", "nut_assembly_square")

#: The paper's appendix "Action Description Mapping", A1..A21, in order.
PAPER_LIFT = [
    "Change cube color to red", "Change cube color to green", "Change cube color to blue",
    "Change cube color to gray", "Change table color to green", "Change table color to blue",
    "Change table color to red", "Change table color to gray",
    "Resize table to (0.8, 0.2, 0.025)", "Resize table to (0.2, 0.8, 0.025)",
    "Resize cube to (0.04, 0.04, 0.04)", "Resize cube to (0.01, 0.01, 0.01)",
    "Resize cube to (0.04, 0.01, 0.01)", "Change robot color to red",
    "Change robot color to green", "Change robot color to cyan", "Change robot color to gray",
    "Change lighting color to red", "Change lighting color to green",
    "Change lighting color to blue", "Change lighting color to gray",
]


def _entry(**overrides) -> dict:
    entry = {"name": "cube_red", "text": "Change cube color to red", "kind": "color",
             "target": "cube", "value": [1, 0, 0, 1]}
    entry.update(overrides)
    return {k: v for k, v in entry.items() if v is not None}


def _doc(*entries: dict) -> dict:
    return {"task": "lift", "perturbations": list(entries) or [_entry()]}


def test_a_valid_catalog_parses() -> None:
    cat = parse_catalog(_doc(_entry(), _entry(name="light_red", kind="light", target="light",
                                              value=[1, 0, 0])))
    assert isinstance(cat, Catalog) and len(cat) == 2 and cat.task == "lift"
    assert cat["light_red"].value == (1.0, 0.0, 0.0)
    assert cat.index("light_red") == 1
    assert cat[0].value == (1.0, 0.0, 0.0, 1.0)


def test_rgb_colour_gets_alpha_one() -> None:
    assert parse_catalog(_doc(_entry(value=[0, 1, 0])))[0].value == (0.0, 1.0, 0.0, 1.0)


@pytest.mark.parametrize("entry, match", [
    (_entry(kind="texture"), r"perturbations\[0\]\.kind: unknown kind 'texture'"),
    (_entry(value=[1, 0]), r"perturbations\[0\]\.value: a colour is"),
    (_entry(value=[2, 0, 0]), r"perturbations\[0\]\.value: a colour is"),
    (_entry(value="red"), r"perturbations\[0\]\.value: kind 'color' needs a list of numbers"),
    (_entry(kind="size", value=[0.1, 0.1]), r"\.value: a size is three positive"),
    (_entry(kind="size", value=[0.1, -0.1, 0.1]), r"\.value: a size is three positive"),
    (_entry(kind="light", target="light", value=[1, 0, 0, 1]), r"\.value: a light colour"),
    (_entry(kind="object", value=[1]), r"\.value: kind 'object' needs"),
    (_entry(name="Cube Red"), r"\.name: use lower-case letters"),
    (_entry(text="  "), r"\.text: a non-empty description"),
    (_entry(value=None), r"perturbations\[0\]: missing field\(s\) \['value'\]"),
    (_entry(target=None), r"missing field\(s\) \['target'\]"),
    (_entry(colour="red"), r"unknown field\(s\) \['colour'\]"),
])
def test_bad_entries_name_the_field(entry: dict, match: str) -> None:
    with pytest.raises(CatalogError, match=match):
        parse_catalog(_doc(entry), "x.yaml")


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(CatalogError, match=r"perturbations\[1\]\.name: duplicate name 'cube_red'"):
        parse_catalog(_doc(_entry(), _entry(value=[0, 1, 0])))


@pytest.mark.parametrize("doc, match", [
    ([1, 2], "a catalog is a mapping"),
    ({"perturbations": [_entry()]}, "'task' must be a non-empty string"),
    ({"task": "lift", "world": "moon", "perturbations": [_entry()]}, "'world' must be one of"),
    ({"task": "lift", "perturbations": []}, "'perturbations' must be a non-empty list"),
    ({"task": "lift", "perturbations": [_entry()], "extra": 1}, r"unknown top-level key"),
])
def test_bad_documents_are_refused(doc, match: str) -> None:
    with pytest.raises(CatalogError, match=match):
        parse_catalog(doc)


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("task: lift\nperturbations: [\n  - {name: a\n")
    with pytest.raises(CatalogError, match="not valid YAML"):
        load_catalog(bad)
    with pytest.raises(CatalogError, match="does not exist"):
        load_catalog(tmp_path / "missing.yaml")


def test_unknown_name_lookup_lists_the_known_ones() -> None:
    cat = parse_catalog(_doc())
    with pytest.raises(CatalogError, match="unknown perturbation 'cube_pink'.*cube_red"):
        cat["cube_pink"]


def test_catalog_round_trips_through_yaml(tmp_path: Path) -> None:
    cat = load_catalog(CATALOG_DIR / "lift.yaml")
    path = tmp_path / "copy.yaml"
    path.write_text(yaml.safe_dump({"task": cat.task, "world": cat.world,
                                    "perturbations": [p.to_dict() for p in cat]}))
    again = load_catalog(path)
    assert again.perturbations == cat.perturbations


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_catalog_loads(path: Path) -> None:
    cat = load_catalog(path)
    assert len(cat) > 0 and {p.kind for p in cat.perturbations} <= set(KINDS)


@pytest.mark.parametrize("task", SIM_TASKS)
def test_each_simulated_task_has_a_comparable_catalog(task: str) -> None:
    cat = load_catalog(CATALOG_DIR / f"{task}.yaml")
    assert cat.task == task and cat.world == "sim"
    assert 15 <= len(cat) <= 21
    assert {"color", "light"} <= {p.kind for p in cat}
    assert any(p.target == "robot" for p in cat)


def test_lift_catalog_is_the_papers_21_in_order() -> None:
    cat = load_catalog(CATALOG_DIR / "lift.yaml")
    assert [p.text for p in cat] == PAPER_LIFT
    sizes = {p.name: p.value for p in cat if p.kind == "size"}
    assert sizes == {"table_long_narrow": (0.8, 0.2, 0.025), "table_short_wide": (0.2, 0.8, 0.025),
                     "cube_large": (0.04, 0.04, 0.04), "cube_small": (0.01, 0.01, 0.01),
                     "cube_bar": (0.04, 0.01, 0.01)}
    assert [p.kind for p in cat].count("light") == 4


def test_the_variations_catalog_starts_with_the_lift_catalog_unchanged():
    lift = load_catalog(CATALOG_DIR / "lift.yaml")
    variations = load_catalog(CATALOG_DIR / "lift_variations.yaml")
    assert variations.task == lift.task
    assert [p.to_dict() for p in variations][:len(lift)] == [p.to_dict() for p in lift]
    assert len(variations) > len(lift)
