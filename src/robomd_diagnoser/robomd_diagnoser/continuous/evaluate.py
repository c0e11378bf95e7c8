"""Embedding quality (paper Table V, Fig. 9, Fig. 15) and its ablations.

- Confusion matrix: cosine similarity between the per-perturbation mean known embeddings; its
  distance to the identity as MSE (mean over the N x N entries) and Frobenius norm. The paper's
  0.1801 and 7.6387 fit an 18 x 18 matrix (7.6387^2 / 0.1801 = 324), so compare MSE across
  catalog sizes, not the Frobenius norm.
- kNN accuracy as k grows: a seeded split of the known embeddings (30% test), majority vote of
  the k nearest training embeddings (ties: the nearer class), for two labels: the perturbation
  set and the rollout's outcome.
- Ablations (:data:`ABLATIONS`): the same data and settings with BCE only (no Eq. 1) and with the
  image branch only (no text encoder).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robomd_diagnoser.continuous.embedding_env import KnownEmbeddings

KS = (1, 3, 5, 7, 9, 11, 15)
TEST_FRACTION = 0.3
#: Variant name -> (embedder config overrides, train settings overrides).
ABLATIONS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "bce_only": ({}, {"contrastive_weight": 0.0}),
    "image_only": ({"use_text": False}, {}),
}
VARIANT_TITLES = {"full": "image + text, BCE + contrastive", "bce_only": "image + text, BCE only",
                  "image_only": "image only, BCE + contrastive"}


def confusion_matrix(embeddings: np.ndarray, names: Sequence[str],
                     order: Sequence[str] | None = None) -> tuple[list[str], np.ndarray]:
    """Cosine similarity of per-name mean embeddings.

    :param embeddings: (N, D) embeddings.
    :param names: each embedding's perturbation set.
    :param order: names in display order (default: first appearance); names absent are skipped.
    :returns: the names and the (M, M) matrix.
    """
    names = list(names)
    labels = [n for n in (order or dict.fromkeys(names)) if n in set(names)]
    means = np.stack([embeddings[[i for i, n in enumerate(names) if n == lab]].mean(0)
                      for lab in labels])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    return labels, means @ means.T


def deviation(matrix: np.ndarray) -> dict[str, float]:
    """MSE and Frobenius distance of a confusion matrix to the identity."""
    diff = matrix - np.eye(len(matrix))
    return {"mse": float((diff ** 2).mean()), "frobenius": float(np.linalg.norm(diff))}


def knn_accuracy(embeddings: np.ndarray, labels: Sequence[Any], ks: Sequence[int] = KS,
                 test_fraction: float = TEST_FRACTION, seed: int = 0) -> dict[int, float]:
    """Test accuracy of a k-nearest-neighbour classifier for each k (module doc).

    :param embeddings: (N, D) embeddings.
    :param labels: each embedding's class.
    :param ks: neighbour counts.
    :param test_fraction: share of the embeddings held out for testing.
    :param seed: seeds the split.
    """
    labels = np.asarray([str(x) for x in labels])
    n = len(labels)
    perm = np.random.default_rng(seed).permutation(n)
    n_test = max(1, int(round(n * test_fraction)))
    test, train = perm[:n_test], perm[n_test:]
    if len(train) == 0:
        raise ValueError(f"knn_accuracy: {n} embeddings are too few to split")
    d = np.linalg.norm(embeddings[test][:, None, :] - embeddings[train][None, :, :], axis=2)
    ranked = np.argsort(d, axis=1, kind="stable")
    out = {}
    for k in ks:
        k_eff = min(k, len(train))
        correct = 0
        for row, t in zip(ranked, test, strict=True):
            votes = Counter(labels[train[row[:k_eff]]])
            top = max(votes.values())
            # ties: the class whose member is nearest
            winner = next(labels[train[j]] for j in row[:k_eff]
                          if votes[labels[train[j]]] == top)
            correct += winner == labels[t]
        out[int(k)] = correct / len(test)
    return out


@dataclass(frozen=True)
class EmbeddingQuality:
    """The figures of one embedder.

    :param variant: ``full``, ``bce_only`` or ``image_only``.
    :param labels: the confusion matrix's perturbation sets, in order.
    :param matrix: the cosine confusion matrix.
    :param mse: its MSE to the identity.
    :param frobenius: its Frobenius distance to the identity.
    :param knn_perturbation: kNN accuracy (perturbation labels) by k.
    :param knn_outcome: kNN accuracy (success/failure labels) by k.
    :param head_accuracy: the success head's accuracy on the known samples.
    """

    variant: str
    labels: list[str]
    matrix: np.ndarray
    mse: float
    frobenius: float
    knn_perturbation: dict[int, float]
    knn_outcome: dict[int, float]
    head_accuracy: float

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["matrix"] = np.round(self.matrix, 4).tolist()
        data["title"] = VARIANT_TITLES.get(self.variant, self.variant)
        return data


def embedding_quality(known: KnownEmbeddings, variant: str, order: Sequence[str] | None = None,
                      ks: Sequence[int] = KS, seed: int = 0) -> EmbeddingQuality:
    """Confusion matrix, deviation and kNN curves of a set of known embeddings.

    :param known: the embeddings (with names and outcomes).
    :param variant: its name in the tables.
    :param order: display order of the perturbation sets.
    :param ks: kNN neighbour counts.
    :param seed: seeds the kNN split.
    """
    labels, matrix = confusion_matrix(known.embeddings, known.names, order)
    dev = deviation(matrix)
    return EmbeddingQuality(
        variant, labels, matrix, dev["mse"], dev["frobenius"],
        knn_accuracy(known.embeddings, known.names, ks, seed=seed),
        knn_accuracy(known.embeddings, known.success, ks, seed=seed),
        float(np.mean((known.p_success > 0.5) == known.success)))


def plot_confusion(quality: EmbeddingQuality, path: Path) -> Path:
    """A readable heatmap of the confusion matrix (names on both axes, values in [-1, 1])."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(quality.labels)
    side = max(5.0, 0.36 * n + 2.5)
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    im = ax.imshow(quality.matrix, vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(n), quality.labels, rotation=90, fontsize=8)
    ax.set_yticks(range(n), quality.labels, fontsize=8)
    ax.set_title(f"{VARIANT_TITLES.get(quality.variant, quality.variant)}\n"
                 f"cosine similarity of mean embeddings; MSE to I {quality.mse:.4f}, "
                 f"Frobenius {quality.frobenius:.3f}", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_knn(qualities: Sequence[EmbeddingQuality], path: Path) -> Path:
    """kNN accuracy against k for each variant (perturbation labels solid, outcome dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for i, q in enumerate(qualities):
        color = f"C{i}"
        title = VARIANT_TITLES.get(q.variant, q.variant)
        ax.plot(list(q.knn_perturbation), list(q.knn_perturbation.values()), "o-", color=color,
                label=f"{title}: perturbation")
        ax.plot(list(q.knn_outcome), list(q.knn_outcome.values()), "s--", color=color,
                label=f"{title}: outcome")
    ax.set_xlabel("k")
    ax.set_ylabel("kNN test accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(qualities: Sequence[EmbeddingQuality], out_dir: Path,
                 info: dict[str, Any]) -> list[Path]:
    """Write ``embedding_eval.json``, ``embedding_eval.md``, one heatmap per variant and the
    kNN plot.

    :param qualities: the variants' figures (the full model first).
    :param out_dir: where to write.
    :param info: run description stored in the JSON (data, samples, machine...).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [plot_confusion(q, out_dir / f"confusion_{q.variant}.png") for q in qualities]
    paths.append(plot_knn(qualities, out_dir / "knn.png"))
    json_path = out_dir / "embedding_eval.json"
    json_path.write_text(json.dumps({**info, "variants": [q.to_dict() for q in qualities]},
                                    indent=2))
    ks = list(qualities[0].knn_perturbation)
    lines = ["| embedding | confusion MSE | Frobenius | head accuracy | "
             + " | ".join(f"kNN@{k}" for k in ks) + " |",
             "|---|---|---|---|" + "---|" * len(ks)]
    for q in qualities:
        lines.append(f"| {VARIANT_TITLES.get(q.variant, q.variant)} | {q.mse:.4f} | "
                     f"{q.frobenius:.3f} | {q.head_accuracy:.3f} | "
                     + " | ".join(f"{q.knn_perturbation[k]:.2f} / {q.knn_outcome[k]:.2f}"
                                  for k in ks) + " |")
    lines += ["", f"kNN cells: perturbation-label accuracy / outcome accuracy; "
              f"{len(qualities[0].labels)} perturbation sets. Paper Table V (image + text, "
              "BCE + contrastive): MSE 0.1801, Frobenius 7.6387."]
    md_path = out_dir / "embedding_eval.md"
    md_path.write_text("\n".join(lines) + "\n")
    return [json_path, md_path, *paths]


def display_order(names: Sequence[str], catalog_names: Sequence[str]) -> list[str]:
    """Nominal first, then catalog order, then combinations in first-appearance order."""
    present = set(names)
    singles = [n for n in ["nominal", *catalog_names] if n in present]
    return singles + [n for n in dict.fromkeys(names) if n not in set(singles)]


def ablation_dirs(model_dir: Path) -> dict[str, Path]:
    """Where the ablation variants of the run in ``model_dir`` are trained."""
    return {name: model_dir / "ablations" / name for name in ABLATIONS}


def evaluate_run(model_dir: str | Path, data: str | Path | None = None, ablations: bool = True,
                 out_dir: str | Path | None = None, progress: bool = True, seed: int = 0,
                 info: dict[str, Any] | None = None) -> tuple[list[EmbeddingQuality], list[Path]]:
    """Evaluate a trained embedder and (training them first when missing) its ablations.

    The ablations use the run's data (minus the perturbations it never saw) and settings with
    the overrides of :data:`ABLATIONS`; they are resumable like any training run.

    :param model_dir: a ``robomd embed train`` output directory.
    :param data: the campaign or sweep directory (default: the one the run was trained on).
    :param ablations: also train and evaluate the ablations.
    :param out_dir: where the report goes (default ``<model_dir>/eval``).
    :param progress: show progress bars.
    :param seed: seeds the kNN split.
    :param info: extra values for the JSON report (e.g. the machine).
    """
    from dataclasses import replace

    from robomd_diagnoser.continuous.dataset import load_dataset, open_source
    from robomd_diagnoser.continuous.model import FailureEmbedder
    from robomd_diagnoser.continuous.train import (
        EMBEDDER,
        KNOWN,
        TrainSettings,
        train_embedding,
    )

    model_dir = Path(model_dir)
    embedder, meta = FailureEmbedder.load(model_dir / EMBEDDER)
    known = {"full": KnownEmbeddings.load(model_dir / KNOWN)}
    data = Path(data or meta["data"])
    catalog_names = open_source(data).catalog.names
    if ablations:
        seen = {n for name in known["full"].names for n in name.split("+")}
        dataset = load_dataset(data, [n for n in catalog_names if n not in seen], progress)
        settings = TrainSettings.from_dict(meta["settings"])
        for name, path in ablation_dirs(model_dir).items():
            cfg_over, set_over = ABLATIONS[name]
            if progress:
                print(f"embed eval: ablation {name} in {path}", file=sys.stderr)
            _, known[name] = train_embedding(dataset, replace(embedder.config, **cfg_over),
                                             replace(settings, **set_over), path, progress)
    order = display_order(known["full"].names, catalog_names)
    qualities = [embedding_quality(k, name, order, seed=seed) for name, k in known.items()]
    info = {"model": str(model_dir), "data": str(data), "samples": len(known["full"].names),
            "settings": meta["settings"], "embedder": embedder.config.to_dict(), **(info or {})}
    paths = write_report(qualities, Path(out_dir or model_dir / "eval"), info)
    return qualities, paths
