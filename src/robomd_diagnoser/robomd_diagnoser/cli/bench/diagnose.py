"""``robomd bench diagnose``: which agent ranks failure modes best for a given rollout budget
(the experiment: :mod:`robomd_diagnoser.benchmarks.diagnose`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from robomd_diagnoser.benchmarks.diagnose import BUDGETS, METHODS, TARGET, compare_agents

#: The shipped Lift BC policy's sweep, under config/ (see docs/diagnosis.md for how it was made).
DEFAULT_GROUND_TRUTH = "ground_truth/lift_bc.json"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "diagnose",
        help="compare PPO, A2C, uniform sweep and Thompson sampling on a sweep's failure rates",
        description="Runs each agent on outcomes sampled from a ground-truth sweep's measured "
                    "failure rates (synthetic table world) and reports the pairwise accuracy of "
                    "its failure likelihood at several budgets, averaged over seeds, and the "
                    "rollouts each needs to reach 0.9.")
    p.add_argument("--ground-truth", type=Path, default=None,
                   help="a sweep's failure_rates.json, as written by `robomd sweep` "
                        f"(default: config/{DEFAULT_GROUND_TRUTH}, the shipped Lift BC policy)")
    p.add_argument("--catalog", type=Path,
                   help="catalog YAML (default: config/catalogs/<task of the sweep>.yaml)")
    p.add_argument("--seeds", type=int, default=5, help="seeds per method (default: %(default)s)")
    p.add_argument("--budgets", default=",".join(map(str, BUDGETS)),
                   help="comma-separated rollout budgets (default: %(default)s)")
    p.add_argument("--reference-budget", type=int, default=126,
                   help="budget of the headline figures (default: %(default)s, lift_bc.yaml's)")
    p.add_argument("--methods", default=",".join(METHODS),
                   help="comma-separated agents (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from robomd_diagnoser.analysis import load_ground_truth
    from robomd_diagnoser.catalog import CatalogError, load_catalog
    from robomd_diagnoser.paths import find_config

    if args.ground_truth is None:
        args.ground_truth = find_config(DEFAULT_GROUND_TRUTH)
    if not args.ground_truth.is_file():
        print(f"robomd bench diagnose: no ground truth at {args.ground_truth}; make one with "
              "`robomd sweep --task lift --policy bc --rollouts 10 --workers 2` and pass its "
              "failure_rates.json with --ground-truth", file=sys.stderr)
        return 2
    try:
        truth = load_ground_truth(args.ground_truth)
        task = json.loads(Path(args.ground_truth).read_text()).get("task")
        catalog = load_catalog(args.catalog or find_config(f"catalogs/{task}.yaml"))
        budgets = sorted({int(b) for b in args.budgets.split(",")} | {args.reference_budget})
        methods = [m.strip() for m in args.methods.split(",")]
        unknown = [m for m in methods if m not in METHODS]
        if unknown:
            raise ValueError(f"--methods: unknown {unknown}; use some of {', '.join(METHODS)}")
    except (ValueError, CatalogError, FileNotFoundError) as exc:
        print(f"robomd bench diagnose: {exc}", file=sys.stderr)
        return 2
    missing = [n for n in catalog.names if n not in truth.rates]
    if missing:
        print(f"robomd bench diagnose: {truth.source} has no rate for {missing}; sweep the whole "
              f"catalog {catalog.source}", file=sys.stderr)
        return 2
    figures = compare_agents(catalog, truth, methods, args.seeds, budgets, args.reference_budget,
                             log=lambda m: print(m, file=sys.stderr))
    per_method, ref, best = figures["methods"], figures["reference_budget"], figures["best_method"]
    pairs = figures["pairs"]
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"ground truth {truth.source}: {len(catalog)} perturbations, {pairs} pairs with true "
          f"rates >= 0.2 apart; {args.seeds} seeds; table-world replay")
    print("pairwise accuracy of P_fail (mean over seeds) by budget [observed-rate accuracy]:")
    print(f"{'budget':>8}" + "".join(f"{m:>18}" for m in per_method))
    for b in budgets:
        cells = []
        for m in per_method:
            c = per_method[m]["curve"][b]
            acc, obs = c["pairwise_accuracy"], c["observed_pairwise_accuracy"]
            cells.append(f"{acc:.3f} [{obs:.3f}]" if acc is not None else "-")
        print(f"{b:>8}" + "".join(f"{c:>18}" for c in cells))
    print(f"best at {ref} rollouts: {best}; rollouts to reach {TARGET}: "
          + ", ".join(f"{m} {r}" for m, r in figures["rollouts_to_0.9"].items()))
    print(f"paper Table I anchor (Lift/BC): PPO 0.823, A2C 0.742; {figures['seconds']} s on "
          f"{figures['machine']['cpu']} ({figures['machine']['cores']} cores)")
    return 0
