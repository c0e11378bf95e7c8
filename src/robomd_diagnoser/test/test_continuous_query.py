"""End to end on a tiny synthetic sweep: embed train, embed eval, query (deterministic)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from continuous_fixtures import TINY, make_sweep

from robomd_diagnoser.cli import main
from robomd_diagnoser.continuous.agent import AgentSettings, EmbeddingAgent
from robomd_diagnoser.continuous.dataset import load_dataset
from robomd_diagnoser.continuous.query import rank_texts
from robomd_diagnoser.continuous.train import TrainSettings, train_embedding

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
    assert main(["query", "--campaign", str(tmp_path / "none"), "x"]) == 2
