"""``robomd bench diagnose``: which agent finds a space's failure modes in the fewest rollouts.

Replays a ground truth's members (a Bernoulli draw at each member's measured rate per rollout, no
simulator) and runs every agent through one decision rule; see
:mod:`robomd_diagnoser.benchmarks.diagnose`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

#: The shipped Lift BC policy's sweep, under config/ (see docs/diagnosis.md for how it was made).
DEFAULT_GROUND_TRUTH = "ground_truth/lift_bc.json"


def register(sub: argparse._SubParsersAction) -> None:
    from robomd_diagnoser.benchmarks.diagnose import AGENTS, FRACTIONS

    p = sub.add_parser(
        "diagnose",
        help="compare diagnosing agents on a replayed ground truth (rollouts to find its "
             "failure modes, interval coverage)",
        description="Replays a ground truth's members (outcome = Bernoulli draw at the member's "
                    "measured rate) and reports, per agent, recall and precision of the failure "
                    "modes it reports, the rollouts it needs for 0.9 recall at precision >= 0.9, "
                    "the coverage of its anytime-valid intervals, pairwise accuracy and "
                    "interaction recall.")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--ground-truth", type=Path, default=None,
                     help="a space ground truth JSON ({space, members: [{name, levels, failures, "
                          "trials}]}) or a sweep's failure_rates.json "
                          f"(default: config/{DEFAULT_GROUND_TRUTH})")
    src.add_argument("--synthetic", metavar="FxL",
                     help="a SYNTHETIC ground truth instead: F families x L levels, singles and "
                          "cross-family pairs (e.g. 9x8: 2,376 members)")
    p.add_argument("--synthetic-seed", type=int, default=0,
                   help="seed of the synthetic ground truth (default: %(default)s)")
    p.add_argument("--seeds", type=int, default=5, help="seeds per agent (default: %(default)s)")
    p.add_argument("--agents", default=",".join(AGENTS),
                   help="comma-separated agent types (default: %(default)s)")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="a failure mode fails at least this often (default: %(default)s)")
    p.add_argument("--confidence", type=float, default=0.95,
                   help="confidence of intervals and decisions (default: %(default)s)")
    p.add_argument("--fractions", default=",".join(map(str, FRACTIONS)),
                   help="budgets checked, as fractions of the members (default: %(default)s)")
    p.add_argument("--max-passes", type=float, default=30.0,
                   help="stop an agent after this many rollouts per member (default: "
                        "%(default)s)")
    p.add_argument("--rl-passes", type=float, default=0.25,
                   help="the same cap for PPO and A2C, whose steps cost far more; budgets "
                        "beyond it are not scored for them (default: %(default)s)")
    p.add_argument("--out", type=Path, help="also write the JSON there")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from robomd_diagnoser.benchmarks import machine
    from robomd_diagnoser.benchmarks.diagnose import BenchSettings, run_bench
    from robomd_diagnoser.paths import find_config
    from robomd_diagnoser.space_truth import load_space_truth, synthetic_truth

    try:
        if args.synthetic:
            f, _, lv = args.synthetic.partition("x")
            if not (f.isdigit() and lv.isdigit()):
                raise ValueError(f"--synthetic: FAMILIESxLEVELS such as 9x8, got "
                                 f"{args.synthetic!r}")
            truth = synthetic_truth(int(f), int(lv), seed=args.synthetic_seed)
        else:
            truth = load_space_truth(args.ground_truth or find_config(DEFAULT_GROUND_TRUTH))
        for name in ("threshold", "confidence"):
            if not 0 < getattr(args, name) < 1:
                raise ValueError(f"--{name}: between 0 and 1 (exclusive), got "
                                 f"{getattr(args, name)}")
        settings = BenchSettings(
            agents=tuple(a.strip() for a in args.agents.split(",") if a.strip()),
            seeds=args.seeds, threshold=args.threshold, confidence=args.confidence,
            fractions=tuple(float(x) for x in args.fractions.split(",")),
            max_passes=args.max_passes, rl_passes=args.rl_passes)
    except (ValueError, FileNotFoundError) as exc:
        print(f"robomd bench diagnose: {exc}", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    figures = run_bench(truth, settings, progress=lambda line: print(line, file=sys.stderr))
    figures["machine"] = machine()
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2))
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    label = " (SYNTHETIC)" if figures["synthetic"] else ""
    print(f"{figures['space']}{label}: {figures['space_size']} members, "
          f"{figures['failure_modes']} failure modes (rate >= {settings.threshold}), "
          f"{figures['interaction_failure_modes']} of them interactions; {settings.seeds} seeds; "
          f"confidence {settings.confidence}")
    print(f"{'agent':>10} {'to 0.9':>8}" + "".join(
        f" {'R/P @' + str(b):>16}" for b in figures["budgets"]) + f" {'coverage':>9}")
    for name, a in figures["agents"].items():
        cells = []
        for b in figures["budgets"]:
            row = a["budgets"].get(str(b))
            if row is None:
                cells.append("not run")
                continue
            r, p = row["recall"], row["precision"]
            cells.append(f"{r:.2f}/{'-' if p is None else f'{p:.2f}'}")
        covs = [b["interval_coverage"] for b in a["budgets"].values()
                if b["interval_coverage"] is not None]
        reach = a["rollouts_to_recall_0.9"]
        print(f"{name:>10} {'-' if reach is None else int(reach):>8}"
              + "".join(f" {c:>16}" for c in cells)
              + f" {min(covs) if covs else float('nan'):>9.3f}")
    print(f"best: {figures['best_agent']} at {figures['best_rollouts_to_recall_0.9']} rollouts; "
          f"sweep {figures['sweep_rollouts_to_recall_0.9']}; interval coverage min "
          f"{figures['interval_coverage_min']}; {figures['seconds']} s on "
          f"{figures['machine']['cpu']} ({figures['machine']['cores']} cores)")
    return 0
