"""``robomd diagnose``: run or resume a discrete RoboMD diagnosis campaign (Algorithm 1)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from robomd_diagnoser.cli import add_executor_args, executor_from_args
from robomd_diagnoser.progress import add_progress_argument

#: Ranked rows printed on the terminal (a factor space has thousands).
TABLE_ROWS = 30


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "diagnose",
        help="run (or resume) a diagnosis campaign from a campaign YAML",
        description="Trains the campaign's agent to find the perturbations under which the "
                    "policy fails, storing every rollout as it finishes in "
                    "OUT/rollouts.sqlite, and writes OUT/diagnosis.json (P_fail, observed "
                    "failure rates with 95%% intervals, entropy, number of failure modes, FSI). "
                    "Rerunning the same command resumes an interrupted campaign without "
                    "repeating finished rollouts.")
    p.add_argument("--config", type=Path, required=True,
                   help="campaign YAML, e.g. config/campaigns/lift_bc.yaml")
    p.add_argument("--out", type=Path, help="campaign directory (default: the config's output)")
    p.add_argument("--budget", type=int,
                   help="rollout budget instead of the config's (a finished campaign can be "
                        "extended)")
    p.add_argument("--ground-truth", type=Path,
                   help="a sweep's failure_rates.json to score the ranking against")
    add_progress_argument(p)
    add_executor_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from robomd_diagnoser.analysis import load_ground_truth
    from robomd_diagnoser.campaign import CampaignError, run_campaign
    from robomd_diagnoser.config import MAX_COUNT, ConfigError, load_campaign
    from robomd_diagnoser.diagnosis_env import ReplayError
    from robomd_diagnoser.store import StoreError

    try:
        config = load_campaign(args.config)
        config = dataclasses.replace(config, executor=executor_from_args(args, config.executor))
        if args.budget is not None:
            if not 1 <= args.budget <= MAX_COUNT:
                raise ConfigError(f"--budget: use 1..{MAX_COUNT} rollouts, got {args.budget}")
            config = dataclasses.replace(config, budget=args.budget)
        truth = load_ground_truth(args.ground_truth) if args.ground_truth else None
        result = run_campaign(config, args.out, progress=not args.no_progress,
                              ground_truth=truth)
    except (ConfigError, CampaignError, ReplayError, StoreError, ValueError) as exc:
        print(f"robomd diagnose: {exc}", file=sys.stderr)
        return 2
    d = result.diagnosis
    print(f"campaign {config.name}: {result.new_rollouts} new rollouts, {result.replayed} "
          f"replayed from the store; {d.rollouts_completed} judged, {d.rollouts_aborted} not "
          f"completed; results in {result.out_dir}")
    print(f"entropy {d.entropy:.3f} nats, failure modes {d.num_failure_modes} (P_fail > 1/N), "
          f"{d.num_confirmed_failure_modes} confirmed by observed rates, FSI {d.fsi:.3f}")
    predicted = sum(m.prediction is not None for m in d.modes)
    print(f"decided at {d.confidence:.0%}: {d.num_decided_failure_modes} failure modes from "
          f"their own rollouts" + (f"; {predicted} members predicted by the agent's model"
                                   if predicted else ""))
    shown = d.modes[:TABLE_ROWS]
    width = max(24, *(len(m.name) for m in shown))
    print(f"{'rank':>4}  {'perturbation':<{width}} {'P_fail':>7}  {'observed':>8}  "
          f"{d.confidence:.0%} interval   n")
    for i, m in enumerate(shown, 1):
        rate = "-" if m.rate is None else f"{m.rate:.2f}"
        print(f"{i:>4}  {m.name:<{width}} {m.p_fail:7.3f}  {rate:>8}  [{m.lo:.2f}, {m.hi:.2f}]  "
              f"{m.trials:>3}")
    if len(d.modes) > len(shown):
        print(f"      ... {len(d.modes) - len(shown)} more (every member is in "
              f"{result.out_dir / 'diagnosis.json'} and the report)")
    if d.accuracy:
        a = d.accuracy
        print(f"vs {a['ground_truth']}: pairwise accuracy {a['pairwise_accuracy']}, Kendall tau "
              f"{a['kendall_tau']}")
        fm = a.get("failure_modes")
        if fm:
            print(f"failure modes vs the ground truth (rate >= {fm['threshold']}): "
                  f"{len(fm['confirmed'])} of {fm['reported']} reported among its members "
                  f"confirmed, {len(fm['refuted'])} refuted; {len(fm['confirmed'])} of its "
                  f"{fm['truth_failure_modes']} found"
                  + (f"; {fm['outside']} reported outside it" if fm["outside"] else ""))
    print(f"report: robomd report {result.out_dir}")
    return 0
