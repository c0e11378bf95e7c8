"""``robomd bench continuous``: how well continuous RoboMD ranks perturbations it never saw.

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

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from robomd_diagnoser.catalog import Catalog
    from robomd_diagnoser.continuous.model import EmbedderConfig
    from robomd_diagnoser.continuous.train import TrainSettings

DEFAULT_SWEEP = "runs/sweep-lift-bc"
TARGET = 0.8
QUERY_SCENES = ("nominal", "rendered")


def register(sub: argparse._SubParsersAction) -> None:
    from robomd_diagnoser.commands.embed import add_model_args
    from robomd_diagnoser.continuous.agent import AgentSettings

    p = sub.add_parser(
        "continuous", help="unseen-perturbation ranking accuracy of continuous RoboMD",
        description="Holds catalog perturbations out of training (k folds), trains the failure "
                    "embedding and the embedding-space PPO agent on the rest, ranks the held-out "
                    "texts by Eq. 4 and scores them against a sweep's failure rates.")
    p.add_argument("--sweep", type=Path, default=Path(DEFAULT_SWEEP),
                   help="a complete sweep directory: its rollouts are the training data and its "
                        "failure_rates.json the ground truth (default: %(default)s, written by "
                        "`robomd sweep --task lift --policy bc`)")
    p.add_argument("--folds", type=int, default=3,
                   help="folds; every perturbation is unseen in exactly one (default: "
                        "%(default)s)")
    p.add_argument("--query-scene", choices=QUERY_SCENES, default="nominal",
                   help="what each ranked text is embedded with: the nominal scene images, or "
                        "its own pre-rollout scene images from the sweep (observing a scene "
                        "needs no rollout; no outcome is read) (default: %(default)s)")
    p.add_argument("--timesteps", type=int, default=AgentSettings().timesteps,
                   help="agent training steps per fold (default: %(default)s)")
    p.add_argument("--work", type=Path,
                   help="where fold models go, resumable (default: SWEEP/continuous-bench/KEY, "
                        "KEY a digest of the folds and model settings)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_model_args(p)
    p.set_defaults(func=run)


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


def _pairs(truth: dict[str, float], names: list[str]) -> int:
    from robomd_diagnoser.analysis import PAIR_MIN_GAP

    return sum(1 for i, a in enumerate(names) for b in names[i + 1:]
               if abs(truth[a] - truth[b]) >= PAIR_MIN_GAP - 1e-9)


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


def run(args: argparse.Namespace) -> int:
    import torch

    from robomd_diagnoser.analysis import kendall_tau, load_ground_truth, pairwise_accuracy
    from robomd_diagnoser.commands.bench import machine
    from robomd_diagnoser.commands.embed import model_from_args
    from robomd_diagnoser.continuous.agent import AgentSettings, EmbeddingAgent
    from robomd_diagnoser.continuous.dataset import DatasetError, load_dataset, open_source
    from robomd_diagnoser.continuous.evaluate import embedding_quality
    from robomd_diagnoser.continuous.model import ModelError
    from robomd_diagnoser.continuous.query import rank_texts
    from robomd_diagnoser.continuous.train import TrainError, train_embedding

    def fail(msg: str) -> int:
        print(f"robomd bench continuous: error: {msg}", file=sys.stderr)
        return 2

    rates = args.sweep / "failure_rates.json"
    if not rates.is_file():
        return fail(f"no sweep at {args.sweep} (missing failure_rates.json); make one with "
                    "`robomd sweep --task lift --policy bc --rollouts 10 --workers 2` or pass "
                    "--sweep DIR")
    progress = not args.no_progress
    start = time.monotonic()
    try:
        truth = load_ground_truth(rates)
        source = open_source(args.sweep)
        catalog = source.catalog
        names = [n for n in catalog.names if n in truth.rates]
        folds = folds_of(names, args.folds, args.seed)
        config, settings = model_from_args(args, source.policy)
        if not config.use_text and args.query_scene == "nominal":
            raise ValueError("--image-only ranks scenes, not texts: add --query-scene rendered")
        agent_settings = AgentSettings(timesteps=args.timesteps, seed=args.seed)
    except (DatasetError, ValueError) as exc:
        return fail(str(exc))
    work = args.work or args.sweep / "continuous-bench" / settings_key(args.folds, config, settings)
    torch.set_num_threads(1)
    results = []
    try:
        everything = load_dataset(args.sweep, progress=progress)
    except DatasetError as exc:
        return fail(str(exc))
    scenes = {n: everything.images_of((n,)) for n in names} \
        if args.query_scene == "rendered" else {}
    for i, held_out in enumerate(folds):
        try:
            dataset = everything.without(held_out)
            embedder, known = train_embedding(dataset, config, settings, work / f"fold{i}",
                                              progress)
        except (DatasetError, ModelError, TrainError, ValueError) as exc:
            return fail(str(exc))
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
            "held_out": held_out, "pairs": _pairs(truth.rates, held_out),
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
            "agent_failure_share": agent.failure_share(seed=args.seed),
            "far": [n for n in held_out if by_text[catalog[n].text].far],
            "ranking": [{"name": n, "log_density": scores[n], "p_fail_head": head[n],
                         "true_rate": truth.rates[n]}
                        for n in sorted(held_out, key=lambda n: -scores[n])]})
        if progress:
            print(f"fold {i + 1}/{len(folds)}: unseen pairwise accuracy "
                  f"{results[-1]['pairwise_accuracy']} over {results[-1]['pairs']} pairs "
                  f"({time.monotonic() - start:.0f} s)", file=sys.stderr)
    figures = {
        "sweep": str(args.sweep), "perturbations": len(names), "folds": len(folds),
        "unseen_pairwise_accuracy": _pooled(results, "pairwise_accuracy"),
        "unseen_head_pairwise_accuracy": _pooled(results, "head_pairwise_accuracy"),
        "unseen_group_baseline_accuracy": _pooled(results, "group_baseline_accuracy"),
        "seen_pairwise_accuracy": _mean(r["seen_pairwise_accuracy"] for r in results),
        "unseen_pairs": sum(r["pairs"] for r in results),
        "confusion_mse": float(np.mean([r["confusion_mse"] for r in results])),
        "confusion_frobenius": float(np.mean([r["confusion_frobenius"] for r in results])),
        "target": TARGET, "query_scene": args.query_scene, "embedder": config.to_dict(),
        "training": vars(settings).copy(),
        "agent": agent_settings.to_dict(), "per_fold": results,
        "seconds": round(time.monotonic() - start, 1), "machine": machine()}
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    acc = figures["unseen_pairwise_accuracy"]
    head = figures["unseen_head_pairwise_accuracy"]
    print(f"{len(names)} perturbations in {len(folds)} folds, each unseen once; "
          f"{figures['unseen_pairs']} scored pairs (true rates >= 0.2 apart)")
    print(f"unseen pairwise accuracy (Eq. 4 ranking): {acc if acc is None else f'{acc:.3f}'}; "
          f"success head: {head if head is None else f'{head:.3f}'}; target {TARGET}")
    base, seen = figures["unseen_group_baseline_accuracy"], figures["seen_pairwise_accuracy"]
    print(f"references: group-mean baseline {base if base is None else f'{base:.3f}'} (no "
          f"embedding); Eq. 4 on the trained perturbations "
          f"{seen if seen is None else f'{seen:.3f}'}")
    print(f"confusion MSE {figures['confusion_mse']:.4f}, Frobenius "
          f"{figures['confusion_frobenius']:.3f} (mean over folds)")
    print(f"paper anchors: Table IV 61-80% over 21 unseen variations; Table V MSE 0.1801, "
          f"Frobenius 7.6387; {figures['seconds']} s on {figures['machine']['cpu']} "
          f"({figures['machine']['cores']} cores)")
    return 0
