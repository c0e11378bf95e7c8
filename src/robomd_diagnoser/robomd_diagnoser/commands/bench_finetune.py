"""``robomd bench finetune``: does failure-guided fine-tuning help the shipped Lift BC policy?

Diagnoses the policy (or takes a finished campaign), fine-tunes it on expert demonstrations under
its top failure modes (targeted) and, under the same budget, spread over the whole catalog
(uniform), and evaluates all three policies on the same scenes and seeds. Small defaults; the
paper-sized run is ``--full``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

#: (campaign budget, FinetuneRequest fields) of the default and the ``--full`` run.
SIZES = {
    "small": (42, {"top": 3, "demos_per_mode": 12, "epochs": 30, "eval_rollouts": 8,
                   "eval_all": False}),
    "full": (126, {"top": 3, "demos_per_mode": 20, "epochs": 30, "eval_rollouts": 10,
                   "eval_all": True}),
}


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
    from robomd_diagnoser.campaign import run_campaign
    from robomd_diagnoser.commands.bench import machine
    from robomd_diagnoser.config import load_campaign
    from robomd_diagnoser.finetune import FinetuneRequest, load_diagnosis, run_finetune
    from robomd_diagnoser.finetune_report import write_html
    from robomd_diagnoser.paths import find_config

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if args.workers < 1:
        log(f"robomd bench finetune: error: --workers must be >= 1, got {args.workers}")
        return 2
    size = "full" if args.full else "small"
    budget, fields = SIZES[size]
    start = time.monotonic()
    try:
        campaign = args.campaign
        if campaign is None:
            config = load_campaign(find_config("campaigns/lift_bc.yaml"))
            config = dataclasses.replace(config, budget=budget, workers=args.workers)
            campaign = args.out / "campaign"
            log(f"bench finetune: diagnosing {config.policy} on {config.task} "
                f"({config.agent.type} agent, {budget} rollouts) into {campaign}")
            run_campaign(config, campaign, progress=False)
        diagnosed = time.monotonic()
        req = FinetuneRequest(strategies=("targeted", "uniform"), workers=args.workers,
                              original_demos=args.original_demos, **fields)
        result = run_finetune(load_diagnosis(campaign), args.out / "finetune", req, log=log)
    except (ValueError, RuntimeError) as exc:  # config, campaign, fine-tuning and rollout errors
        log(f"robomd bench finetune: error: {exc}\n(finished work is kept; rerun to resume)")
        return 2
    html_path = write_html(result, args.out / "finetune")
    s = result["summary"]
    figures = {
        "success_under_top_modes_before": s["success_under_top_modes_before"],
        "success_under_top_modes_after": s["success_under_top_modes_targeted"],
        "nominal_success_before": s["nominal_success_before"],
        "nominal_success_after": s["nominal_success_targeted"],
        "targeted_vs_uniform_gain": s["targeted_vs_uniform_gain"],
        "success_under_top_modes_uniform": s["success_under_top_modes_uniform"],
        "nominal_success_uniform": s["nominal_success_uniform"],
        "wasserstein_before": s["wasserstein_before"],
        "wasserstein_targeted": s["wasserstein_targeted"],
        "wasserstein_uniform": s["wasserstein_uniform"],
        "top_modes": result["top_modes"],
        "intervals": {label: {k: res[k] for k in ("top_modes", "nominal")}
                      for label, res in result["policies"].items()},
        "size": size, "campaign": str(campaign), "campaign_budget": budget,
        "demos_per_strategy": result["budget"], **{k: fields[k] for k in fields},
        "replay": result["strategies"]["targeted"]["replay_source"],
        "seconds": {"diagnosis": round(diagnosed - start, 1),
                    "total": round(time.monotonic() - start, 1)},
        "report": str(html_path), "machine": machine()}
    log(f"success under top modes {result['top_modes']}: before "
        f"{figures['success_under_top_modes_before']:.2f}, targeted "
        f"{figures['success_under_top_modes_after']:.2f}, uniform "
        f"{figures['success_under_top_modes_uniform']:.2f}; nominal before "
        f"{figures['nominal_success_before']:.2f}, after "
        f"{figures['nominal_success_after']:.2f}; report {html_path}")
    if args.json:
        print(json.dumps(figures, indent=2))
    return 0
