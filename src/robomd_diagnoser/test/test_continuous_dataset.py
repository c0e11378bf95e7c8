"""Embedding training samples from a sweep directory."""

from __future__ import annotations

import numpy as np
import pytest
from continuous_fixtures import PERTS, SEEDS, catalog, image, make_sweep

from robomd_diagnoser.continuous.dataset import (
    DatasetError,
    load_dataset,
    open_source,
    perturbation_text,
    similarity_label,
)
from robomd_diagnoser.sweep import NOMINAL_TEXT


def test_dataset_has_one_sample_per_completed_rollout(tmp_path):
    data = load_dataset(make_sweep(tmp_path), progress=False)
    assert len(data) == SEEDS * (len(PERTS) + 1)  # the aborted rollout is not a sample
    assert data.images.shape == (len(data), 16, 16, 3) and data.images.dtype == np.uint8
    i = data.perturbations.index(("table_red",))
    assert data.texts[i] == "Change table color to red"
    assert not data.success[i]
    assert np.array_equal(data.images[i], image(("table_red",), int(data.seeds[i])))
    assert np.array_equal(data.nominal_images[i], image((), int(data.seeds[i])))
    assert data.texts[data.perturbations.index(())] == NOMINAL_TEXT
    assert data.horizon == 150


def test_exclude_drops_every_rollout_of_a_perturbation(tmp_path):
    data = load_dataset(make_sweep(tmp_path), exclude=["table_blue"], progress=False)
    assert ("table_blue",) not in data.perturbations
    assert len(data) == SEEDS * len(PERTS)
    with pytest.raises(DatasetError, match="not in the catalog"):
        load_dataset(tmp_path, exclude=["table_black"], progress=False)


def test_missing_images_are_rendered_once_and_cached(tmp_path):
    calls = []

    def render(perts, seed):
        calls.append((perts, seed))
        return image(perts, seed)

    make_sweep(tmp_path, render=True)
    load_dataset(tmp_path, progress=False, renderer=render)
    assert len(calls) == SEEDS * (len(PERTS) + 1)  # nominal images shared with nominal rollouts
    calls.clear()
    load_dataset(tmp_path, progress=False, renderer=render)
    assert calls == []
    assert (tmp_path / "scene_images" / "0__table_red.npy").is_file()


def test_source_kind_and_errors(tmp_path):
    assert open_source(make_sweep(tmp_path / "s")).kind == "sweep"
    with pytest.raises(DatasetError, match="no rollouts.sqlite"):
        open_source(tmp_path / "nowhere")


@pytest.mark.parametrize("by,perts,label", [
    ("perturbation", ("table_red",), "table_red"),
    ("perturbation", ("table_red", "cube_red"), "table_red+cube_red"),
    ("group", ("table_red",), "color:table"),
    ("group", ("table_blue",), "color:table"),
    ("group", (), "nominal"),
])
def test_similarity_labels(by, perts, label):
    assert similarity_label(catalog(), perts, by) == label


def test_accumulated_text_joins_catalog_texts():
    assert perturbation_text(catalog(), ("table_red", "cube_green")) == (
        "Change table color to red; Change cube color to green")


def test_without_matches_loading_with_exclude(tmp_path):
    full = load_dataset(make_sweep(tmp_path), progress=False)
    held = full.without(["table_blue", "cube_red"])
    loaded = load_dataset(tmp_path, exclude=["table_blue", "cube_red"], progress=False)
    assert held.perturbations == loaded.perturbations and held.texts == loaded.texts
    assert np.array_equal(held.images, loaded.images)
    with pytest.raises(DatasetError, match="not in the catalog"):
        full.without(["nope"])


def test_bench_folds_hold_each_perturbation_out_once():
    from robomd_diagnoser.benchmarks.continuous import folds_of

    names = [f"p{i}" for i in range(21)]
    folds = folds_of(names, 3, seed=0)
    assert sorted(n for f in folds for n in f) == sorted(names)
    assert [len(f) for f in folds] == [7, 7, 7] and folds == folds_of(names, 3, seed=0)
    with pytest.raises(ValueError, match="--folds"):
        folds_of(names, 1, seed=0)


def test_group_baseline_predicts_from_the_same_kind_and_target():
    from robomd_diagnoser.benchmarks.continuous import group_baseline

    rates = {"table_red": 1.0, "table_blue": 0.6, "cube_red": 0.0, "cube_green": 0.2}
    pred = group_baseline(catalog(), rates, ["table_blue", "cube_green"], ["table_red", "cube_red"])
    assert pred == {"table_blue": 1.0, "cube_green": 0.0}
    # no trained perturbation changes the same thing: the mean of all trained ones
    assert group_baseline(catalog(), rates, ["cube_green"], ["table_red", "table_blue"]) == {
        "cube_green": pytest.approx(0.8)}


def test_images_of_a_set_are_its_samples_pre_rollout_scenes(tmp_path):
    data = load_dataset(make_sweep(tmp_path / "sweep"), progress=False)
    red = data.images_of(("table_red",))
    assert red.shape == (SEEDS, 16, 16, 3)
    assert {image(("table_red",), s).tobytes() for s in range(SEEDS)} == \
        {im.tobytes() for im in red}
    assert len(data.images_of(())) == SEEDS and len(data.images_of(("cube_red", "x"))) == 0


def test_bench_keeps_the_fold_models_of_each_setting_apart():
    from dataclasses import replace

    from robomd_diagnoser.benchmarks.continuous import settings_key
    from robomd_diagnoser.continuous.model import EmbedderConfig
    from robomd_diagnoser.continuous.train import TrainSettings

    c, t = EmbedderConfig(), TrainSettings()
    keys = {settings_key(3, c, t), settings_key(4, c, t),
            settings_key(3, replace(c, use_text=False), t), settings_key(3, c, replace(t, seed=1))}
    assert len(keys) == 4 and settings_key(3, c, t) == settings_key(3, EmbedderConfig(), t)


def test_render_scenes_shows_each_perturbation_in_the_datas_world(tmp_path):
    from robomd_diagnoser.catalog import parse_catalog
    from robomd_diagnoser.continuous.dataset import render_scenes

    source = open_source(make_sweep(tmp_path / "sweep"))
    scenes = render_scenes(source, catalog(), ["table_red", "table_blue"], 2)
    assert {n: s.shape for n, s in scenes.items()} == {"table_red": (2, 16, 16, 3),
                                                       "table_blue": (2, 16, 16, 3)}
    assert scenes["table_red"].dtype == np.uint8
    red, blue = (scenes[n].astype(int) for n in ("table_red", "table_blue"))
    assert (red[..., 0] - red[..., 2]).mean() > (blue[..., 0] - blue[..., 2]).mean()
    with pytest.raises(DatasetError, match=r"\['cube_gold'\] are not in catalog"):
        render_scenes(source, catalog(), ["cube_gold"], 2)
    other = parse_catalog({"task": "stack", "perturbations": [
        {"name": "t", "text": "Red table", "kind": "color", "target": "table",
         "value": [1.0, 0.0, 0.0]}]}, "stack.yaml")
    with pytest.raises(DatasetError, match="stack.yaml is for task stack"):
        render_scenes(source, other, [], 2)
