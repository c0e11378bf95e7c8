"""``robomd bench finetune``: does failure-guided fine-tuning help the shipped Lift BC policy?
(The experiment: :mod:`robomd_diagnoser.benchmarks.finetune`.)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "finetune", help="targeted vs uniform fine-tuning of the Lift BC policy, before/after",
        description="Runs a small Lift/BC diagnosis (or uses --campaign), fine-tunes the policy "
                    "on expert demos under its top-3 failure modes and, with the same budget, "
                    "spread uniformly over the catalog, then evaluates before and after on the "
                    "same seeds. Default sizes: campaign budget 42, 12 demos per mode, 30 epochs, "
                    "8 rollouts per scene on the nominal scene and the top modes; --full: budget "
                    "126, 20 demos per mode, 30 epochs, 10 rollouts on the whole catalog.")
    p.add_argument("--campaign", type=Path,
                   help="finished campaign to take the modes from (default: run "
                        "config/campaigns/lift_bc.yaml into OUT/campaign)")
    p.add_argument("--full", action="store_true", help="paper-sized run (hours on 2 cores)")
    p.add_argument("--original-demos", type=Path,
                   help="the shipped policy's training demonstrations for the replay sample "
                        "(default: collect nominal expert episodes)")
    p.add_argument("--workers", type=int, default=2, help="simulator processes "
                   "(default: %(default)s)")
    p.add_argument("--out", type=Path, default=Path("runs/bench-finetune"),
                   help="working directory, resumable (default: %(default)s)")
    p.add_argument("--json", action="store_true",
                   help="print the figures as JSON on stdout (progress goes to stderr)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from robomd_diagnoser.benchmarks.finetune import targeted_vs_uniform

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if args.workers < 1:
        log(f"robomd bench finetune: error: --workers must be >= 1, got {args.workers}")
        return 2
    try:
        figures = targeted_vs_uniform(args.out, "full" if args.full else "small", args.workers,
                                      args.campaign, args.original_demos, log=log)
    except (ValueError, RuntimeError) as exc:  # config, campaign, fine-tuning and rollout errors
        log(f"robomd bench finetune: error: {exc}\n(finished work is kept; rerun to resume)")
        return 2
    log(f"success under top modes {figures['top_modes']}: before "
        f"{figures['success_under_top_modes_before']:.2f}, targeted "
        f"{figures['success_under_top_modes_after']:.2f}, uniform "
        f"{figures['success_under_top_modes_uniform']:.2f}; nominal before "
        f"{figures['nominal_success_before']:.2f}, after "
        f"{figures['nominal_success_after']:.2f}; report {figures['report']}")
    if args.json:
        print(json.dumps(figures, indent=2))
    return 0
