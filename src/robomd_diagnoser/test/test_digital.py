"""Digital perturbations: the physical/digital split of catalog entries and each corruption of the
camera path (applies, changes the pixels as it should, seeded, nothing left after clear)."""

from __future__ import annotations

import numpy as np
import pytest

from robomd_diagnoser.catalog import CatalogError, load_catalog, parse_catalog
from robomd_diagnoser.digital import (
    ACTION_FACTORS,
    IMAGE_FACTORS,
    DigitalPipeline,
    needs_operator,
    split,
)
from robomd_diagnoser.paths import find_config
from robomd_diagnoser.space import FACTORS

MIXED = parse_catalog({
    "task": "lift", "world": "real",
    "perturbations": [{"name": "table_red", "text": "Cover the table with the red sheet",
                       "kind": "color", "target": "table", "value": [1, 0, 0, 1]}],
    "families": [
        {"name": "lamp", "factor": "light_intensity", "values": [0.5]},
        {"name": "image_noise", "factor": "image_noise", "values": [0.1]},
        {"name": "image_brightness", "factor": "image_brightness", "values": [0.2, -0.2]},
        {"name": "image_contrast", "factor": "image_contrast", "values": [2.0]},
        {"name": "action_noise", "factor": "action_noise", "values": [0.3, 0.4]},
    ],
    "combinations": {"order": 3},
}, "mixed")


def _scene(size: int = 32) -> np.ndarray:
    """A checkerboard of 4-px squares in mid greys, RGB uint8."""
    y, x = np.mgrid[:size, :size]
    board = np.where((x // 4 + y // 4) % 2 == 0, 80, 170).astype(np.uint8)
    return np.repeat(board[..., None], 3, axis=2)


def _pipeline(*names: str, catalog=MIXED) -> DigitalPipeline:
    pipe = DigitalPipeline()
    pipe.set(catalog[n] for n in names)
    return pipe


def test_the_digital_factors_are_the_ones_the_pipeline_applies() -> None:
    assert {f.name for f in FACTORS.values() if f.digital} == {*IMAGE_FACTORS, *ACTION_FACTORS}


def test_split_single_digital_physical_and_mixed_members() -> None:
    assert split(MIXED["table_red"]) == ("table_red", ())
    assert split(MIXED["lamp_0p5"]) == ("lamp_0p5", ())
    physical, digital = split(MIXED["image_noise_0p1"])
    assert physical is None and [lv.full_name for lv in digital] == ["image_noise_0p1"]
    physical, digital = split(MIXED["lamp_0p5+image_noise_0p1+image_brightness_m0p2"])
    assert physical == "lamp_0p5"
    assert [lv.full_name for lv in digital] == ["image_noise_0p1", "image_brightness_m0p2"]
    assert MIXED[physical].text == "Scale light intensity by 0.5"  # the space holds the part
    assert needs_operator(MIXED["lamp_0p5+action_noise_0p3"])
    assert not needs_operator(MIXED["image_noise_0p1+action_noise_0p3"])


def test_real_lift_digital_families_need_no_operator() -> None:
    catalog = load_catalog(find_config("catalogs/real_lift.yaml"))
    by_need = {name: needs_operator(catalog[name]) for name in catalog.names}
    assert by_need["object_milk"] and by_need["light_red"]
    digital = [n for n, need in by_need.items() if not need]
    assert len(digital) == len(catalog) - len(catalog.perturbations)
    assert "image_noise_0p05+image_blur_2" in digital


def test_brightness_shifts_every_pixel_by_the_fraction_of_full_scale() -> None:
    image = _scene()
    brighter = _pipeline("image_brightness_0p2").corrupt(image)
    assert np.array_equal(brighter.astype(int) - image, np.full(image.shape, 51))
    darker = _pipeline("image_brightness_m0p2").corrupt(image)
    assert np.array_equal(image - darker.astype(int), np.full(image.shape, 51))


def test_contrast_scales_about_the_mean() -> None:
    image = _scene()
    catalog = parse_catalog({"task": "lift", "families": [
        {"name": "contrast", "factor": "image_contrast", "values": [0.5, 2.0]}]}, "contrast")
    low = _pipeline("contrast_0p5", catalog=catalog).corrupt(image)
    high = _pipeline("contrast_2", catalog=catalog).corrupt(image)
    assert low.std() == pytest.approx(image.std() / 2, abs=1.0)
    assert high.std() == pytest.approx(image.std() * 2, abs=1.0)
    assert low.mean() == pytest.approx(image.mean(), abs=1.0)


def test_blur_smooths_edges_but_keeps_the_mean() -> None:
    image = _scene()
    catalog = parse_catalog({"task": "lift", "families": [
        {"name": "blur", "factor": "image_blur", "values": [1.5]}]}, "blur")
    blurred = _pipeline("blur_1p5", catalog=catalog).corrupt(image)
    edge = np.abs(np.diff(image.astype(int), axis=1)).max()
    assert np.abs(np.diff(blurred.astype(int), axis=1)).max() < edge / 2
    assert blurred.mean() == pytest.approx(image.mean(), abs=1.0)


def test_noise_has_the_level_std_and_is_seeded_by_the_rollout() -> None:
    image = _scene(64)
    pipe = _pipeline("image_noise_0p1")
    pipe.reseed(3)
    first = pipe.corrupt(image)
    diff = first.astype(float) - image
    assert diff.std() == pytest.approx(25.5, rel=0.1) and abs(diff.mean()) < 2.0
    pipe.reseed(3)
    assert np.array_equal(pipe.corrupt(image), first)
    pipe.reseed(4)
    assert not np.array_equal(pipe.corrupt(image), first)


def test_image_corruptions_apply_in_a_fixed_order() -> None:
    image = _scene()
    a = _pipeline("image_contrast_2", "image_noise_0p1")
    b = _pipeline("image_noise_0p1", "image_contrast_2")  # contrast first all the same
    a.reseed(1)
    b.reseed(1)
    assert np.array_equal(a.corrupt(image), b.corrupt(image))


def test_action_noise_adds_in_quadrature_and_stays_in_range() -> None:
    pipe = _pipeline("image_noise_0p1+action_noise_0p3", "action_noise_0p4")
    assert pipe.action_noise == pytest.approx(0.5)
    pipe.reseed(0)
    noisy = np.array([pipe.perturb_action(np.zeros(7)) for _ in range(400)])
    assert noisy.std() == pytest.approx(0.5, rel=0.15) and np.abs(noisy).max() <= 1.0


def test_physical_parts_and_clear_leave_the_pipeline_nominal() -> None:
    image, action = _scene(), np.full(7, 0.25)
    pipe = _pipeline("table_red", "lamp_0p5")
    assert not pipe.active and pipe.describe() == "none"
    pipe = _pipeline("lamp_0p5+image_brightness_0p2+action_noise_0p3")
    assert pipe.describe() == "image_brightness 0.2, action_noise 0.3"
    assert not np.array_equal(pipe.corrupt(image), image)
    pipe.clear()
    assert not pipe.active
    assert pipe.corrupt(image) is image and pipe.perturb_action(action) is action


def test_a_non_digital_level_is_refused_and_nothing_changes() -> None:
    pipe = _pipeline("image_noise_0p1")
    lamp = MIXED["lamp_0p5"].edits[0]
    with pytest.raises(CatalogError, match="'lamp' level '0p5'.*not digital"):
        pipe.add(lamp)
    forged = type(lamp)("lamp", "0p5", "", "light_intensity", "light", (0.5,), True)
    with pytest.raises(CatalogError, match="light_intensity"):
        pipe.set([MIXED["image_brightness_0p2"], type(MIXED["lamp_0p5"])(
            "lamp_0p5", "", "factors", "light", (), (("lamp", "0p5"),), (forged,))])
    assert pipe.image_ops == [("image_noise", 0.1)]


@pytest.mark.parametrize("value", [(5.0,), (0.1, 0.1), "loud"])
def test_a_digital_level_outside_its_range_is_refused(value) -> None:
    level = MIXED["image_noise_0p1"].edits[0]
    pipe = DigitalPipeline()
    with pytest.raises(CatalogError, match=r"'image_noise' level '0p1'.*one number in \[0, 0.5\]"):
        pipe.add(type(level)("image_noise", "0p1", "", "image_noise", "image", value, True))
    assert not pipe.active
