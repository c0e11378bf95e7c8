"""The embedding losses, the embedder's checkpoints and its loading errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from continuous_fixtures import TINY

from robomd_diagnoser.continuous.model import (
    EmbedderConfig,
    FailureEmbedder,
    ModelError,
    load_text_encoder,
)
from robomd_diagnoser.continuous.train import TrainSettings, contrastive_loss, embedding_loss


def test_contrastive_loss_pulls_similar_and_pushes_dissimilar_until_the_margin():
    emb = torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 0.5]])
    # pairs (0,1) d=5, (0,2) d=0.5, (1,2) d=sqrt(9+12.25)
    same = contrastive_loss(emb, torch.tensor([0, 0, 0]), margin=1.0)
    assert same.item() == pytest.approx((5.0 + 0.5 + math.sqrt(21.25)) / 3)
    differ = contrastive_loss(emb, torch.tensor([0, 1, 2]), margin=1.0)
    assert differ.item() == pytest.approx((0.0 + 0.5 + 0.0) / 3)  # only d=0.5 is inside
    mixed = contrastive_loss(emb, torch.tensor([0, 1, 0]), margin=1.0)
    assert mixed.item() == pytest.approx((0.0 + 0.5 + 0.0) / 3)


def test_contrastive_loss_has_finite_gradients_for_identical_embeddings():
    emb = torch.ones(3, 4, requires_grad=True)
    contrastive_loss(emb, torch.tensor([0, 0, 1]), margin=1.0).backward()
    assert torch.isfinite(emb.grad).all()


@pytest.mark.parametrize("weight", [0.0, 2.0])
def test_embedding_loss_is_bce_plus_weighted_contrastive(weight):
    emb = torch.nn.functional.normalize(torch.randn(6, 8, generator=torch.Generator()
                                                    .manual_seed(0)), dim=1)
    logits = torch.tensor([2.0, -1.0, 0.5, 0.0, -3.0, 1.0])
    success = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.0, 1.0])
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    parts = embedding_loss(emb, logits, success, labels, TrainSettings(contrastive_weight=weight))
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, success)
    assert parts["bce"].item() == pytest.approx(bce.item())
    assert parts["loss"].item() == pytest.approx(bce.item() + weight * parts["contrastive"].item())


def test_embedder_round_trips_weights_only(tmp_path):
    cfg = EmbedderConfig(**{**TINY.to_dict(), "use_text": False})
    emb = FailureEmbedder.build(cfg, seed=1)
    images = np.random.default_rng(0).integers(0, 255, (3, 20, 20, 3), dtype=np.uint8)
    e1, p1 = emb.embed(images, ["a", "b", "c"])
    assert e1.shape == (3, 16) and np.allclose(np.linalg.norm(e1, axis=1), 1.0, atol=1e-5)
    emb.save(tmp_path / "e.pt", {"note": "x"})
    loaded, meta = FailureEmbedder.load(tmp_path / "e.pt")
    e2, p2 = loaded.embed(images, ["a", "b", "c"])
    assert meta == {"note": "x"} and np.allclose(e1, e2) and np.allclose(p1, p2)


def test_missing_local_weights_fail_with_a_clear_message(tmp_path):
    with pytest.raises(ModelError, match="not a local file.*no hub access"):
        FailureEmbedder.build(EmbedderConfig(image_checkpoint="hf-hub:timm/vit_tiny",
                                             use_text=False))
    with pytest.raises(ModelError, match="not a local file.*no hub access"):
        load_text_encoder("open_clip:ViT-B-32:laion2b_s34b_b79k")
    with pytest.raises(ModelError, match="use one of"):
        load_text_encoder("bert")
    with pytest.raises(ModelError, match="no embedder"):
        FailureEmbedder.load(tmp_path / "none.pt")


def _bc_weights(path, size: int = 24):
    from robomd_diagnoser.learning.model import BCNet
    from robomd_diagnoser.learning.weights import save_bc

    torch.manual_seed(0)
    net = BCNet((4, 4), hidden=8)
    save_bc(path, net, {"image_size": size, "channels": [4, 4], "hidden": 8,
                        "eef_mean": [0.0, 0.0, 1.0], "eef_std": [0.1, 0.1, 0.1], "training": {}})
    return net


def test_bc_backbone_is_the_frozen_policy_encoder(tmp_path):
    net = _bc_weights(tmp_path / "bc.pt", size=24)
    cfg = EmbedderConfig(backbone="bc", image_checkpoint=str(tmp_path / "bc.pt"), img_size=64,
                         use_text=False, hidden_dim=16, embed_dim=8)
    module = FailureEmbedder.build(cfg).module
    images = np.random.default_rng(0).integers(0, 255, (2, 24, 24, 3), dtype=np.uint8)
    x = module.preprocess(images)
    assert x.shape == (2, 3, 24, 24)  # the policy's own image size, not img_size
    with torch.no_grad():
        policy = net.encoder(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255 - 0.5)
        assert torch.allclose(module.backbone(x), policy, atol=1e-5)
    assert module.backbone.num_features == 8
    before = {k: v.clone() for k, v in module.backbone.state_dict().items()}
    module.train()
    emb, logits = module(x, None)
    (logits.sum() + emb.sum()).backward()
    torch.optim.SGD(module.parameters(), lr=1.0).step()
    after = module.backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not module.backbone.training


def test_a_saved_bc_embedder_loads_without_the_policys_file(tmp_path):
    _bc_weights(tmp_path / "bc.pt", size=24)
    cfg = EmbedderConfig(backbone="bc", image_checkpoint=str(tmp_path / "bc.pt"),
                         use_text=False, hidden_dim=16, embed_dim=8)
    embedder = FailureEmbedder.build(cfg)
    images = np.random.default_rng(1).integers(0, 255, (2, 30, 30, 3), dtype=np.uint8)
    before, _ = embedder.embed(images, ["a", "b"])
    embedder.save(tmp_path / "e.pt")
    (tmp_path / "bc.pt").unlink()  # e.g. the model directory moved to another machine
    loaded, _ = FailureEmbedder.load(tmp_path / "e.pt")
    assert loaded.module.backbone.image_size == 24
    assert np.allclose(loaded.embed(images, ["a", "b"])[0], before, atol=1e-6)


def test_bc_backbone_needs_readable_bc_weights(tmp_path):
    with pytest.raises(ModelError, match="needs the policy's BC weights"):
        FailureEmbedder.build(EmbedderConfig(backbone="bc", use_text=False))
    with pytest.raises(ModelError, match="backbone bc: BC weights file .* does not exist"):
        FailureEmbedder.build(EmbedderConfig(backbone="bc", use_text=False,
                                             image_checkpoint=str(tmp_path / "none.pt")))


@pytest.mark.parametrize(("policy", "expected"), [("bc:/w/lift.pt", "/w/lift.pt"),
                                                  ("expert", None)])
def test_bc_backbone_weights_default_to_the_datas_policy(policy, expected):
    import argparse

    from robomd_diagnoser.cli.embed import add_model_args, model_from_args

    parser = argparse.ArgumentParser()
    add_model_args(parser)
    args = parser.parse_args(["--backbone", "bc"])
    if expected is None:
        with pytest.raises(ValueError, match="--backbone bc: the data's policy 'expert'"):
            model_from_args(args, policy)
    else:
        assert model_from_args(args, policy)[0].image_checkpoint == expected
    explicit = parser.parse_args(["--backbone", "bc", "--image-checkpoint", "mine.pt"])
    assert model_from_args(explicit, policy)[0].image_checkpoint == "mine.pt"
