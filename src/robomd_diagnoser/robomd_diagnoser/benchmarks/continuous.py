"""``robomd bench continuous``'s experiment: how well continuous RoboMD ranks perturbations it
never saw.

The catalog is split into folds (seeded shuffle). For each fold, its perturbations are held out
of everything: their rollouts are dropped before the embedding is trained, so neither the
embedding nor the agent ever sees their images, texts or outcomes. The held-out texts are then
ranked by Eq. 4 (:func:`~robomd_diagnoser.continuous.query.rank_texts`), embedded at the nominal
scene or, with ``--query-scene rendered``, with their own pre-rollout scenes (observed, as a
camera would; their outcomes are never read), and scored against the sweep's measured failure
rates with the pairwise accuracy of :mod:`robomd_diagnoser.analysis` (pairs whose true rates
differ by at least 0.2). The pooled accuracy weighs each fold by its pairs.
``agent_failure_share`` (the share of the trained agent's actions at the nominal state that snap
to a failed rollout, against ``known_failure_share``) shows whether PPO learned to seek failures
at all. ``confusion_mse`` / ``confusion_frobenius``
are the fold embeddings' Table V figures (mean over folds, each over its training perturbations).

Two references put the unseen figure in context. ``seen_pairwise_accuracy`` ranks each fold's
*training* perturbations by the same Eq. 4 density: what the agent gets right where it has data.
``unseen_group_baseline_accuracy`` ranks each held-out perturbation by the mean measured failure
rate of the training perturbations that change the same thing (kind and target, e.g. all table
colours; all training perturbations when none does): what the catalog's structure alone predicts,
with no embedding.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from robomd_diagnoser.benchmarks import machine

if TYPE_CHECKING:
    from robomd_diagnoser.catalog import Catalog
    from robomd_diagnoser.continuous.agent import AgentSettings
    from robomd_diagnoser.continuous.model import EmbedderConfig
    from robomd_diagnoser.continuous.train import TrainSettings

TARGET = 0.8
QUERY_SCENES = ("nominal", "rendered")


def folds_of(names: list[str], k: int, seed: int) -> list[list[str]]:
    """Split ``names`` into ``k`` folds after a seeded shuffle (each name in one fold).

    :param names: perturbation names.
    :param k: number of folds, 2 .. len(names).
    :param seed: seeds the shuffle.
    """
    if not 2 <= k <= len(names):
        raise ValueError(f"--folds must be in 2..{len(names)}, got {k}")
    order = list(np.random.default_rng(seed).permutation(len(names)))
    return [sorted((names[i] for i in order[f::k]), key=names.index) for f in range(k)]


def settings_key(folds: int, config: EmbedderConfig, settings: TrainSettings) -> str:
    """A short digest of what the fold models depend on, so that each setting keeps its own.

    :param folds: the number of folds.
    :param config: the embedder's architecture.
    :param settings: its training settings (their seed also shuffles the folds).
    """
    blob = json.dumps({"folds": folds, "config": config.to_dict(), "settings": vars(settings)},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def group_baseline(catalog: Catalog, rates: dict[str, float], held_out: list[str],
                   trained: list[str]) -> dict[str, float]:
    """Each held-out perturbation's predicted failure rate: the mean measured rate of the trained
    perturbations with the same kind and target (of all trained ones when none has).

    :param catalog: the catalog defining kinds and targets.
    :param rates: measured failure rates by name (only ``trained`` ones are read).
    :param held_out: the perturbations to predict.
    :param trained: the perturbations whose rates are known.
    """
    def group(name: str) -> tuple[str, str]:
        return catalog[name].kind, catalog[name].target

    out = {}
    for name in held_out:
        same = [rates[t] for t in trained if group(t) == group(name)] or \
            [rates[t] for t in trained]
        out[name] = float(np.mean(same))
    return out


def _pooled(folds: list[dict[str, Any]], key: str) -> float | None:
    scored = [(f[key], f["pairs"]) for f in folds if f[key] is not None]
    total = sum(p for _, p in scored)
    return sum(a * p for a, p in scored) / total if total else None


def _mean(values: Any) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def held_out_ranking(sweep: Path, folds: Sequence[list[str]], config: EmbedderConfig,
                     settings: TrainSettings, agent_settings: AgentSettings, query_scene: str,
                     work: Path, progress: bool = True) -> dict[str, Any]:
    """Train one embedding and agent per fold without its perturbations; rank them unseen.

    :param sweep: a complete sweep directory (rollouts and ``failure_rates.json``).
    :param folds: held-out perturbation names per fold (:func:`folds_of`).
    :param config: the embedding model.
    :param settings: its training settings.
    :param agent_settings: the embedding-space agent's.
    :param query_scene: ``nominal`` or ``rendered`` (see the module docstring).
    :param work: where fold models go (resumable).
    :param progress: progress bars and a line per fold on stderr.
    :returns: the figures ``robomd bench continuous`` prints.
    :raises DatasetError, ModelError, TrainError, ValueError: for unusable data or settings.
    """
    import torch

    from robomd_diagnoser.analysis import (
        kendall_tau,
        load_ground_truth,
        pairwise_accuracy,
        ranked_pairs,
    )
    from robomd_diagnoser.continuous.agent import EmbeddingAgent
    from robomd_diagnoser.continuous.dataset import load_dataset, open_source
    from robomd_diagnoser.continuous.evaluate import embedding_quality
    from robomd_diagnoser.continuous.query import rank_texts
    from robomd_diagnoser.continuous.train import train_embedding

    start = time.monotonic()
    truth = load_ground_truth(sweep / "failure_rates.json")
    catalog = open_source(sweep).catalog
    folded = {n for fold in folds for n in fold}
    names = [n for n in catalog.names if n in folded]
    torch.set_num_threads(1)
    results = []
    everything = load_dataset(sweep, progress=progress)
    scenes = {n: everything.images_of((n,)) for n in names} \
        if query_scene == "rendered" else {}
    for i, held_out in enumerate(folds):
        dataset = everything.without(held_out)
        embedder, known = train_embedding(dataset, config, settings, work / f"fold{i}", progress)
        agent = EmbeddingAgent.train(known, agent_settings)
        trained = [n for n in names if n not in held_out]
        # one pass embeds every text: the held-out ones are scored, the trained ones are the
        # seen reference
        by_text = {r.text: r for r in rank_texts(embedder, agent, [catalog[n].text for n in names],
                                                  [scenes.get(n) for n in names])}
        scores = {n: by_text[catalog[n].text].log_density for n in held_out}
        head = {n: by_text[catalog[n].text].p_fail_head for n in held_out}
        fold_truth = {n: truth.rates[n] for n in held_out}
        quality = embedding_quality(known, "full")
        results.append({
            "held_out": held_out, "pairs": len(ranked_pairs(truth.rates, held_out)),
            "pairwise_accuracy": pairwise_accuracy(scores, fold_truth),
            "head_pairwise_accuracy": pairwise_accuracy(head, fold_truth),
            "group_baseline_accuracy": pairwise_accuracy(
                group_baseline(catalog, truth.rates, held_out, trained), fold_truth),
            "seen_pairwise_accuracy": pairwise_accuracy(
                {n: by_text[catalog[n].text].log_density for n in trained},
                {n: truth.rates[n] for n in trained}),
            "kendall_tau": kendall_tau(scores, fold_truth),
            "confusion_mse": quality.mse, "confusion_frobenius": quality.frobenius,
            "training_rollouts": len(dataset),
            "known_failure_share": float(np.mean(~known.success)),
            "agent_failure_share": agent.failure_share(seed=agent_settings.seed),
            "far": [n for n in held_out if by_text[catalog[n].text].far],
            "ranking": [{"name": n, "log_density": scores[n], "p_fail_head": head[n],
                         "true_rate": truth.rates[n]}
                        for n in sorted(held_out, key=lambda n: -scores[n])]})
        if progress:
            print(f"fold {i + 1}/{len(folds)}: unseen pairwise accuracy "
                  f"{results[-1]['pairwise_accuracy']} over {results[-1]['pairs']} pairs "
                  f"({time.monotonic() - start:.0f} s)", file=sys.stderr)
    figures = {
        "sweep": str(sweep), "perturbations": len(names), "folds": len(folds),
        "unseen_pairwise_accuracy": _pooled(results, "pairwise_accuracy"),
        "unseen_head_pairwise_accuracy": _pooled(results, "head_pairwise_accuracy"),
        "unseen_group_baseline_accuracy": _pooled(results, "group_baseline_accuracy"),
        "seen_pairwise_accuracy": _mean(r["seen_pairwise_accuracy"] for r in results),
        "unseen_pairs": sum(r["pairs"] for r in results),
        "confusion_mse": float(np.mean([r["confusion_mse"] for r in results])),
        "confusion_frobenius": float(np.mean([r["confusion_frobenius"] for r in results])),
        "target": TARGET, "query_scene": query_scene, "embedder": config.to_dict(),
        "training": vars(settings).copy(),
        "agent": agent_settings.to_dict(), "per_fold": results,
        "seconds": round(time.monotonic() - start, 1), "machine": machine()}
    return figures
