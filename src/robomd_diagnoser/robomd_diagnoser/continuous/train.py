"""Train the failure embedding: BCE on success plus the margin contrastive loss of Eq. 1.

``loss = BCE(head(e), success) + w_c * C`` with Eq. 1's
``C = mean_{i<j}[ 1[l_i = l_j] d_ij + 1[l_i != l_j] max(0, m - d_ij) ]``
with ``d_ij = ||e_i - e_j||`` over the pairs of a minibatch (the mean instead of Eq. 1's sum keeps
the weight independent of the batch size), ``m`` the margin and ``l`` the similarity label
(:func:`~robomd_diagnoser.continuous.dataset.similarity_label`).

Nominal-image augmentation: queries embed a perturbation *text* with the *nominal* scene image
(an unseen perturbation has no image), so with probability ``nominal_image_prob`` a sample's
image is replaced by the nominal scene at its seed while its text and label stay. The embedding
then learns what the text implies when the image does not show it.

Text dropout, the other way round: with probability ``text_dropout`` a sample keeps its image but
shows the nominal text, so the image must carry the outcome. Use it with queries that come with
their own scene (``--query-scene rendered``, ``robomd query --scene``/``--render``).

The run directory holds ``checkpoint.pt`` (after every epoch: weights, optimiser, random state;
weights-only) and, at the end, ``embedder.pt`` and ``known.npz`` (the known embeddings E). A rerun
with the same data and settings resumes from the checkpoint.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from robomd_diagnoser.continuous.dataset import RolloutDataset
from robomd_diagnoser.continuous.embedding_env import KnownEmbeddings
from robomd_diagnoser.continuous.model import EmbedderConfig, FailureEmbedder
from robomd_diagnoser.progress import ProgressReporter
from robomd_diagnoser.sweep import NOMINAL_TEXT

CHECKPOINT = "checkpoint.pt"
EMBEDDER = "embedder.pt"
KNOWN = "known.npz"
#: Nominal scene images kept for queries (distinct seeds).
NOMINAL_IMAGES = 8


class TrainError(RuntimeError):
    """Training cannot go on as asked (e.g. the run directory holds another run)."""


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation settings of :func:`train_embedding`.

    :param epochs: passes over the data.
    :param batch_size: samples per step.
    :param lr: AdamW learning rate.
    :param weight_decay: AdamW weight decay.
    :param contrastive_weight: weight of Eq. 1 (0: the BCE-only ablation).
    :param margin: Eq. 1's margin (embeddings have unit norm: distances are in [0, 2]).
    :param similar_by: which samples Eq. 1 calls similar (``perturbation`` or ``group``).
    :param nominal_image_prob: probability of the nominal-image augmentation (module doc).
    :param text_dropout: probability of showing a sample with the nominal text instead of its
        own (image kept), so that the image must carry the outcome.
    :param seed: seeds the initial weights, the batch order and the augmentation.
    """

    epochs: int = 20
    batch_size: int = 32
    lr: float = 5e-4
    weight_decay: float = 1e-4
    contrastive_weight: float = 1.0
    margin: float = 1.0
    similar_by: str = "perturbation"
    nominal_image_prob: float = 0.5
    text_dropout: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size < 2 and self.contrastive_weight > 0:
            raise ValueError("batch_size must be >= 2 for the contrastive loss (it needs pairs)")
        for name in ("nominal_image_prob", "text_dropout"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.margin <= 0 or self.lr <= 0 or self.contrastive_weight < 0:
            raise ValueError("margin and lr must be > 0 and contrastive_weight >= 0")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainSettings:
        """Build from :func:`dataclasses.asdict` output (unknown keys are an error)."""
        known = {f.name for f in fields(cls)}
        if set(data) - known:
            raise ValueError(f"train settings: unknown key(s) {sorted(set(data) - known)}")
        return cls(**data)


def contrastive_loss(emb: torch.Tensor, labels: torch.Tensor, margin: float) -> torch.Tensor:
    """Eq. 1 averaged over the pairs ``i < j``: similar pairs pull by ``d``, others push until
    ``margin``.

    :param emb: (B, D) embeddings.
    :param labels: (B,) integer similarity labels.
    :param margin: the margin.
    """
    sq = (emb[:, None, :] - emb[None, :, :]).pow(2).sum(-1)
    dist = sq.clamp_min(1e-12).sqrt()  # finite gradient at d = 0
    same = labels[:, None] == labels[None, :]
    pair = torch.triu(torch.ones_like(same), diagonal=1)
    terms = torch.where(same, dist, F.relu(margin - dist))
    return terms[pair].mean() if pair.any() else emb.sum() * 0.0


def embedding_loss(emb: torch.Tensor, logits: torch.Tensor, success: torch.Tensor,
                   labels: torch.Tensor, settings: TrainSettings) -> dict[str, torch.Tensor]:
    """The training loss and its parts (``loss``, ``bce``, ``contrastive``).

    :param emb: (B, D) embeddings.
    :param logits: (B,) success logits.
    :param success: (B,) 1.0 for success.
    :param labels: (B,) similarity labels.
    :param settings: weights and margin.
    """
    bce = F.binary_cross_entropy_with_logits(logits, success)
    con = contrastive_loss(emb, labels, settings.margin)
    return {"loss": bce + settings.contrastive_weight * con, "bce": bce, "contrastive": con}


def _fingerprint(dataset: RolloutDataset, config: EmbedderConfig,
                 settings: TrainSettings) -> dict[str, Any]:
    return {"config": config.to_dict(), "settings": asdict(settings), "source": dataset.source,
            "samples": len(dataset), "names": sorted(set(dataset.names()))}


def _with_defaults(fingerprint: dict[str, Any]) -> dict[str, Any]:
    """A stored fingerprint with the settings added since it was written at their defaults (a
    run from before a setting existed ran without it)."""
    out = dict(fingerprint)
    out["config"] = {**EmbedderConfig().to_dict(), **fingerprint.get("config", {})}
    out["settings"] = {**json.loads(json.dumps(asdict(TrainSettings()))),
                       **fingerprint.get("settings", {})}
    return out


def build_known(embedder: FailureEmbedder, dataset: RolloutDataset) -> KnownEmbeddings:
    """The known embeddings E of Algorithm 2: every sample with its own pre-rollout image.

    Also keeps up to :data:`NOMINAL_IMAGES` nominal images (distinct seeds) for queries, the
    nominal state (mean embedding of the nominal text at those images) and the reliability
    threshold (the largest distance from a seen perturbation's text, embedded at the nominal
    scene, or with its own scene images for an image-only embedder, to its nearest known
    embedding).

    :param embedder: the trained embedder.
    :param dataset: the samples.
    """
    emb, p_success = embedder.embed(dataset.images, dataset.texts)
    _, first = np.unique(dataset.seeds, return_index=True)
    nominal_images = dataset.nominal_images[np.sort(first)[:NOMINAL_IMAGES]]
    known = KnownEmbeddings(embeddings=emb.astype(np.float32), success=dataset.success.copy(),
                            names=dataset.names(), p_success=p_success.astype(np.float32),
                            nominal_images=nominal_images, horizon=dataset.horizon)
    seen = sorted(set(dataset.texts))
    if embedder.config.use_text:
        queries = text_embeddings(embedder, seen, nominal_images)
    else:  # image only: queries come with their scene, so do the seen ones (already in E)
        texts = np.asarray(dataset.texts)
        queries = normalised_means([emb[texts == t] for t in seen])
    known.nominal = text_embeddings(embedder, [NOMINAL_TEXT], nominal_images)[0]
    known.reliability_threshold = float(known.nearest(queries)[1].max())
    return known


def text_embeddings(embedder: FailureEmbedder, texts: list[str],
                    nominal_images: np.ndarray) -> np.ndarray:
    """Each text embedded at the nominal scene: the normalised mean over the nominal images.

    :param embedder: the embedder.
    :param texts: perturbation texts.
    :param nominal_images: (K, H, W, 3) nominal scene images.
    """
    return scene_embeddings(embedder, texts, [nominal_images] * len(texts))


def scene_embeddings(embedder: FailureEmbedder, texts: list[str],
                     scenes: list[np.ndarray]) -> np.ndarray:
    """Each text embedded with images of its own scene: the normalised mean over them.

    :param embedder: the embedder.
    :param texts: perturbation texts.
    :param scenes: per text, (K_i, H, W, 3) uint8 images of the scene it describes.
    """
    if len(scenes) != len(texts):
        raise ValueError(f"scene_embeddings: {len(texts)} texts but {len(scenes)} scenes")
    if any(len(s) == 0 for s in scenes):
        raise ValueError("scene_embeddings: every text needs at least one scene image")
    emb, _ = embedder.embed(np.concatenate(scenes),
                            [t for t, s in zip(texts, scenes, strict=True) for _ in range(len(s))])
    ends = np.cumsum([len(s) for s in scenes])
    return normalised_means(np.split(emb, ends[:-1]))


def normalised_means(groups: list[np.ndarray]) -> np.ndarray:
    """The unit-norm mean embedding of each group, (len(groups), D) float32.

    :param groups: per group, (K_i, D) embeddings.
    """
    mean = np.stack([g.mean(axis=0) for g in groups])
    return (mean / np.linalg.norm(mean, axis=1, keepdims=True)).astype(np.float32)


def train_embedding(dataset: RolloutDataset, config: EmbedderConfig, settings: TrainSettings,
                    out_dir: str | Path, progress: bool = True) -> tuple[FailureEmbedder,
                                                                       KnownEmbeddings]:
    """Train (or resume) an embedder on ``dataset``; writes the run directory (module doc).

    :param dataset: the samples.
    :param config: the architecture.
    :param settings: the optimisation settings.
    :param out_dir: the run directory.
    :param progress: show a progress bar on stderr.
    :raises TrainError: if ``out_dir`` holds a run with other data or settings.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fingerprint = _fingerprint(dataset, config, settings)
    embedder = FailureEmbedder.build(config, settings.seed)
    module = embedder.module
    optimizer = torch.optim.AdamW(module.parameters(), lr=settings.lr,
                                  weight_decay=settings.weight_decay)
    gen = torch.Generator().manual_seed(settings.seed)
    start_epoch, history = 0, []
    ckpt_path = out / CHECKPOINT
    if ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        if _with_defaults(ckpt["fingerprint"]) != json.loads(json.dumps(fingerprint)):
            raise TrainError(f"{out} holds a training run with other data or settings; use "
                             "another --out, or delete its checkpoint.pt to start over")
        module.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        gen.set_state(ckpt["generator"])
        start_epoch, history = int(ckpt["epoch"]), list(ckpt["history"])
        if progress:
            print(f"embed train: resuming {out} after epoch {start_epoch}", file=sys.stderr)

    images = module.preprocess(dataset.images)
    nominal = module.preprocess(dataset.nominal_images)
    text = embedder.text(dataset.texts) if embedder.text else None
    nominal_text = embedder.text([NOMINAL_TEXT]) if embedder.text else None
    success = torch.from_numpy(dataset.success.astype(np.float32))
    names = dataset.labels(settings.similar_by)
    vocab = {n: i for i, n in enumerate(sorted(set(names)))}
    labels = torch.tensor([vocab[n] for n in names])
    swap_prob = settings.nominal_image_prob if config.use_text else 0.0
    n = len(dataset)
    t0 = time.monotonic()
    with ProgressReporter(settings.epochs, "embed train", enabled=progress, every=1,
                          unit="epoch") as bar:
        bar.update(start_epoch)
        for epoch in range(start_epoch, settings.epochs):
            module.train()
            order = torch.randperm(n, generator=gen)
            swap = torch.rand(n, generator=gen) < swap_prob
            drop = torch.rand(n, generator=gen) < settings.text_dropout \
                if settings.text_dropout > 0 else torch.zeros(n, dtype=torch.bool)
            sums = {"loss": 0.0, "bce": 0.0, "contrastive": 0.0, "correct": 0.0}
            for i in range(0, n, settings.batch_size):
                idx = order[i:i + settings.batch_size]
                imgs = torch.where(swap[idx, None, None, None], nominal[idx], images[idx])
                txt = torch.where(drop[idx, None], nominal_text, text[idx]) \
                    if text is not None else None
                emb, logits = module(imgs, txt)
                parts = embedding_loss(emb, logits, success[idx], labels[idx], settings)
                optimizer.zero_grad()
                parts["loss"].backward()
                optimizer.step()
                for key in ("loss", "bce", "contrastive"):
                    sums[key] += parts[key].item() * len(idx)
                sums["correct"] += float(((logits > 0).float() == success[idx]).sum())
            row = {k: v / n for k, v in sums.items()}
            row = {"epoch": epoch + 1, "loss": row["loss"], "bce": row["bce"],
                   "contrastive": row["contrastive"], "train_accuracy": row["correct"],
                   "seconds": round(time.monotonic() - t0, 1)}
            history.append(row)
            tmp = ckpt_path.with_suffix(".tmp")
            torch.save({"fingerprint": fingerprint, "epoch": epoch + 1,
                        "model": module.state_dict(), "optimizer": optimizer.state_dict(),
                        "generator": gen.get_state(), "history": history}, tmp)
            tmp.replace(ckpt_path)
            bar.update(epoch + 1, loss=f"{row['loss']:.3f}", bce=f"{row['bce']:.3f}",
                       acc=f"{row['train_accuracy']:.2f}")
    embedder.module.eval()
    embedder.save(out / EMBEDDER, {"settings": asdict(settings), "data": dataset.source,
                                   "samples": len(dataset), "history": history})
    known = build_known(embedder, dataset)
    known.save(out / KNOWN)
    return embedder, known
