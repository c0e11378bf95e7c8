"""``robomd bench continuous``: how well continuous RoboMD ranks perturbations it never saw
(the experiment and its figures: :mod:`robomd_diagnoser.benchmarks.continuous`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from robomd_diagnoser.benchmarks.continuous import QUERY_SCENES, TARGET
from robomd_diagnoser.progress import add_progress_argument

DEFAULT_SWEEP = "runs/sweep-lift-bc"


def register(sub: argparse._SubParsersAction) -> None:
    from robomd_diagnoser.cli.embed import add_model_args
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
    p.add_argument("--timesteps", type=int, default=None,
                   help="agent training steps per fold (default: the agent's, AgentSettings)")
    p.add_argument("--work", type=Path,
                   help="where fold models go, resumable (default: SWEEP/continuous-bench/KEY, "
                        "KEY a digest of the folds and model settings)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    add_progress_argument(p)
    add_model_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from robomd_diagnoser.analysis import load_ground_truth
    from robomd_diagnoser.benchmarks.continuous import folds_of, held_out_ranking, settings_key
    from robomd_diagnoser.cli.embed import model_from_args
    from robomd_diagnoser.continuous.agent import AgentSettings
    from robomd_diagnoser.continuous.dataset import DatasetError, open_source
    from robomd_diagnoser.continuous.model import ModelError
    from robomd_diagnoser.continuous.train import TrainError

    def fail(msg: str) -> int:
        print(f"robomd bench continuous: error: {msg}", file=sys.stderr)
        return 2

    rates = args.sweep / "failure_rates.json"
    if not rates.is_file():
        return fail(f"no sweep at {args.sweep} (missing failure_rates.json); make one with "
                    "`robomd sweep --task lift --policy bc --rollouts 10 --workers 2` or pass "
                    "--sweep DIR")
    progress = not args.no_progress
    try:
        truth = load_ground_truth(rates)
        source = open_source(args.sweep)
        catalog = source.catalog
        names = [n for n in catalog.names if n in truth.rates]
        folds = folds_of(names, args.folds, args.seed)
        config, settings = model_from_args(args, source.policy, catalog.task)
        if not config.use_text and args.query_scene == "nominal":
            raise ValueError("--image-only ranks scenes, not texts: add --query-scene rendered")
        agent_settings = AgentSettings(seed=args.seed, **(
            {"timesteps": args.timesteps} if args.timesteps is not None else {}))
    except (DatasetError, ValueError) as exc:
        return fail(str(exc))
    work = args.work or args.sweep / "continuous-bench" / settings_key(args.folds, config, settings)
    try:
        figures = held_out_ranking(args.sweep, folds, config, settings, agent_settings,
                                   args.query_scene, work, progress)
    except (DatasetError, ModelError, TrainError, ValueError) as exc:
        return fail(str(exc))
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    acc = figures["unseen_pairwise_accuracy"]
    head = figures["unseen_head_pairwise_accuracy"]
    print(f"{figures['perturbations']} perturbations in {len(folds)} folds, each unseen once; "
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
