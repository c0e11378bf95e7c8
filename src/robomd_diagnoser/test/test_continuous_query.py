"""End to end on a tiny synthetic sweep: embed train, embed eval, query (deterministic)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from continuous_fixtures import SEEDS, TINY, catalog, image, make_sweep

from robomd_diagnoser.cli.main import main
from robomd_diagnoser.continuous.agent import AgentSettings, EmbeddingAgent
from robomd_diagnoser.continuous.dataset import load_dataset
from robomd_diagnoser.continuous.model import EmbedderConfig
from robomd_diagnoser.continuous.query import load_scene, rank_texts
from robomd_diagnoser.continuous.train import TrainError, TrainSettings, train_embedding

TEXTS = ["Change table color to black", "Change cube color to yellow",
         "Change table color to red"]
AGENT = AgentSettings(timesteps=128, n_steps=64, batch_size=32, n_epochs=2, hidden=(32,))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cont")
    data = load_dataset(make_sweep(tmp / "sweep"), progress=False)
    embedder, known = train_embedding(data, TINY, TrainSettings(epochs=2, batch_size=8),
                                      tmp / "model", progress=False)
    return tmp, embedder, known


def test_training_writes_known_embeddings_and_resumes(trained):
    tmp, _, known = trained
    assert len(known.names) == 20 and known.embeddings.shape == (20, 16)
    assert known.nominal.shape == (16,) and np.isfinite(known.reliability_threshold)
    data = load_dataset(tmp / "sweep", progress=False)
    # a finished run resumes at its last epoch: no further training, identical embeddings
    _, again = train_embedding(data, TINY, TrainSettings(epochs=2, batch_size=8),
                               tmp / "model", progress=False)
    assert np.allclose(again.embeddings, known.embeddings, atol=1e-6)


def test_a_run_from_before_a_setting_existed_resumes(trained, tmp_path):
    import shutil

    import torch

    tmp, _, known = trained
    shutil.copytree(tmp / "model", tmp_path / "model")
    ckpt = torch.load(tmp_path / "model" / "checkpoint.pt", weights_only=True)
    del ckpt["fingerprint"]["settings"]["text_dropout"]  # as written before the option
    torch.save(ckpt, tmp_path / "model" / "checkpoint.pt")
    data = load_dataset(tmp / "sweep", progress=False)
    _, again = train_embedding(data, TINY, TrainSettings(epochs=2, batch_size=8),
                               tmp_path / "model", progress=False)
    assert np.allclose(again.embeddings, known.embeddings, atol=1e-6)
    ckpt["fingerprint"]["settings"]["lr"] = 0.1
    torch.save(ckpt, tmp_path / "model" / "checkpoint.pt")
    with pytest.raises(TrainError, match="other data or settings"):
        train_embedding(data, TINY, TrainSettings(epochs=2, batch_size=8), tmp_path / "model",
                        progress=False)


def test_an_agent_from_other_action_coordinates_is_retrained(trained, tmp_path):
    import torch

    from robomd_diagnoser.continuous.query import load_agent

    tmp, _, known = trained
    path = EmbeddingAgent.train(known, AGENT).save(tmp_path / "agent.pt")
    stale = torch.load(path, weights_only=True)
    del stale["coordinates"]
    torch.save(stale, path)
    with pytest.raises(ValueError, match="other action coordinates"):
        EmbeddingAgent.load(path, known)
    cached = tmp / "model" / "agent" / f"seed{AGENT.seed}_t{AGENT.timesteps}.pt"
    cached.parent.mkdir(exist_ok=True)
    torch.save(stale, cached)
    _, agent = load_agent(tmp / "model", AGENT, progress=False)
    assert agent.settings == AGENT
    assert torch.load(cached, weights_only=True)["coordinates"] == "e/s"


def test_query_ranking_is_deterministic_for_a_fixed_seed(trained):
    _, embedder, known = trained
    rows = [rank_texts(embedder, EmbeddingAgent.train(known, AGENT), TEXTS) for _ in range(2)]
    assert [r.to_dict() for r in rows[0]] == [r.to_dict() for r in rows[1]]
    assert sorted(r.text for r in rows[0]) == sorted(TEXTS)
    assert [r.rank for r in rows[0]] == [1, 2, 3]
    assert all(r.reliability >= 0 for r in rows[0])


def test_cli_train_eval_query(tmp_path, capsys):
    sweep = make_sweep(tmp_path / "sweep")
    model = tmp_path / "model"
    tiny = ["--img-size", "16", "--depth", "1", "--epochs", "2", "--batch-size", "8",
            "--no-progress"]
    assert main(["embed", "train", "--data", str(sweep), "--out", str(model), *tiny]) == 0
    assert (model / "embedder.pt").is_file() and (model / "known.npz").is_file()
    assert "trained on 20 rollouts (8 failures, 5 perturbation sets)" in capsys.readouterr().out
    assert main(["embed", "eval", "--model", str(model), "--no-ablations", "--no-progress",
                 "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert 0 <= figures["full"]["mse"] <= 4 and (model / "eval" / "confusion_full.png").is_file()
    outputs = []
    for _ in range(2):
        assert main(["query", "--campaign", str(sweep), "--model", str(model), "--timesteps",
                     "64", "--json", *TEXTS]) == 0
        outputs.append(json.loads(capsys.readouterr().out)["ranking"])
    assert outputs[0] == outputs[1]
    np.save(tmp_path / "red.npy", np.stack([image(("table_red",), s) for s in range(SEEDS)]))
    red = "Change table color to red"
    assert main(["query", "--campaign", str(sweep), "--model", str(model), "--timesteps", "64",
                 "--json", TEXTS[0], "--scene", f"{red}={tmp_path / 'red.npy'}"]) == 0
    rows = {r["text"]: r for r in json.loads(capsys.readouterr().out)["ranking"]}
    assert set(rows) == {TEXTS[0], red} and rows[red]["nearest"] == "table_red"
    assert main(["query", "--campaign", str(sweep), "--scene", f"{red}=none.png"]) == 2
    assert "scene none.png: no such file" in capsys.readouterr().err
    cat = tmp_path / "catalog.yaml"
    cat.write_text(yaml.safe_dump({"task": "lift", "perturbations": [p.to_dict()
                                                                     for p in catalog()]}))
    assert main(["query", "--campaign", str(sweep), "--model", str(model), "--timesteps", "64",
                 "--json", "--render", str(cat), "table_blue", "Change cube color to red"]) == 0
    rows = {r["text"]: r for r in json.loads(capsys.readouterr().out)["ranking"]}
    assert set(rows) == {"Change table color to blue", "Change cube color to red"}
    assert main(["query", "--campaign", str(sweep), "--model", str(model), "--render", str(cat),
                 "Change robot color to purple"]) == 2
    assert "are neither names nor texts of" in capsys.readouterr().err
    assert main(["query", "--campaign", str(tmp_path / "none"), "x"]) == 2


def test_a_text_ranked_with_its_own_scene_lands_on_its_known_embeddings(trained):
    _, embedder, known = trained
    agent = EmbeddingAgent.train(known, AGENT)
    text = "Change table color to red"
    scene = np.stack([image(("table_red",), seed) for seed in range(SEEDS)])
    [with_scene] = rank_texts(embedder, agent, [text], [scene])
    [at_nominal] = rank_texts(embedder, agent, [text])
    # the same (image, text) pairs are in E: its mean sits on them, unlike the nominal scene's
    assert with_scene.nearest == "table_red" and with_scene.reliability < 0.1
    assert at_nominal.reliability > 0.1 and with_scene.log_density != at_nominal.log_density
    with pytest.raises(ValueError, match="2 texts but 1 scenes"):
        rank_texts(embedder, agent, [text, text], [scene])


def test_load_scene_reads_images_arrays_and_directories(tmp_path):
    import imageio.v3 as iio

    rgb = np.random.default_rng(0).integers(0, 255, (2, 8, 8, 3), dtype=np.uint8)
    iio.imwrite(tmp_path / "a.png", rgb[0])
    np.save(tmp_path / "b.npy", rgb)
    assert np.array_equal(load_scene(tmp_path / "a.png"), rgb[:1])
    assert np.array_equal(load_scene(tmp_path / "b.npy"), rgb)
    assert load_scene(tmp_path).shape == (3, 8, 8, 3)  # a.png then b.npy
    iio.imwrite(tmp_path / "rgba.png", np.zeros((8, 8, 4), np.uint8))
    np.save(tmp_path / "float.npy", rgb.astype(np.float32))
    for name in ("rgba.png", "float.npy"):
        with pytest.raises(ValueError, match=f"scene .*{name}: need 8-bit RGB"):
            load_scene(tmp_path / name)
    with pytest.raises(ValueError, match="no such file"):
        load_scene(tmp_path / "none.png")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="use a .png"):
        load_scene(tmp_path / "notes.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no"):
        load_scene(tmp_path / "empty")


def test_an_image_only_embedder_ranks_scenes_and_refuses_bare_texts(tmp_path):
    data = load_dataset(make_sweep(tmp_path / "sweep"), progress=False)
    config = EmbedderConfig(**{**TINY.to_dict(), "use_text": False})
    embedder, known = train_embedding(data, config, TrainSettings(epochs=2, batch_size=8),
                                      tmp_path / "model", progress=False)
    agent = EmbeddingAgent.train(known, AGENT)
    scenes = [np.stack([image((n,), s) for s in range(SEEDS)]) for n in ("table_red", "cube_red")]
    rows = rank_texts(embedder, agent, ["red table", "red cube"], scenes)
    assert {r.nearest for r in rows} == {"table_red", "cube_red"}
    # seen scenes are queried with their images, so they sit within the threshold
    assert not any(r.far for r in rows) and 0 < known.reliability_threshold < 2
    with pytest.raises(ValueError, match="no text branch.*--scene"):
        rank_texts(embedder, agent, ["red table", "red cube"], [scenes[0], None])


@pytest.mark.parametrize(("dropout", "same"), [(1.0, True), (0.0, False)])
def test_text_dropout_one_trains_without_the_texts(tmp_path, dropout, same):
    from dataclasses import replace

    data = load_dataset(make_sweep(tmp_path / "sweep"), progress=False)
    renamed = replace(data, texts=[f"something else {i % 3}" for i in range(len(data))])
    settings = TrainSettings(epochs=1, batch_size=8, nominal_image_prob=0.0,
                             text_dropout=dropout)
    embs = [train_embedding(d, TINY, settings, tmp_path / name,
                            progress=False)[0].embed(data.images, data.texts)[0]
            for name, d in (("a", data), ("b", renamed))]
    # up to float noise (the encoder's batching moves the nominal text's features by ~1e-8)
    assert np.allclose(embs[0], embs[1], atol=1e-3) is same
    with pytest.raises(ValueError, match="text_dropout must be in"):
        TrainSettings(text_dropout=1.5)
