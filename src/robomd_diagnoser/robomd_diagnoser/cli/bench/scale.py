"""``robomd bench scale``: the Ray pool against the local pool, a node lost mid-sweep, and the
store's write rate (see :mod:`robomd_diagnoser.benchmarks.scale`)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

from robomd_diagnoser.cli import not_positive


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "scale", help="Ray vs local pool throughput, a node removed mid-sweep, store write rate",
        description="Runs the same real rollouts on the local pool and on a local Ray with as "
                    "many workers (ray_vs_local_throughput), a table-world sweep on a simulated "
                    "two-node Ray cluster with one node removed mid-sweep (rollouts_lost, "
                    "rollouts_duplicated) and commits records to a rollout store "
                    "(store_records_per_s).")
    p.add_argument("--task", default="lift", help="task (default: %(default)s)")
    p.add_argument("--policy", default="expert", help="policy spec (default: %(default)s)")
    p.add_argument("--rollouts", type=int, default=24,
                   help="real rollouts per timed round and pool (default: %(default)s)")
    p.add_argument("--workers", type=int, default=2, help="worlds per pool (default: 2)")
    p.add_argument("--rounds", type=int, default=2,
                   help="timed rounds per pool, alternating (default: %(default)s)")
    p.add_argument("--cluster-rollouts", type=int, default=30,
                   help="table-world rollouts of the node-loss sweep (default: %(default)s)")
    p.add_argument("--store-records", type=int, default=2000,
                   help="records committed for the store's rate (default: %(default)s)")
    p.add_argument("--json", action="store_true",
                   help="print the figures as JSON on stdout (progress goes to stderr)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from robomd_diagnoser.benchmarks import machine
    from robomd_diagnoser.benchmarks.scale import run_scale_bench

    if error := not_positive(args, ("rollouts", "workers", "rounds", "cluster_rollouts",
                                    "store_records")):
        print(f"robomd bench scale: error: {error}", file=sys.stderr)
        return 2
    # Ray prints the killed node's raylet messages on stdout; keep stdout for the JSON.
    with contextlib.redirect_stdout(sys.stderr):
        result = run_scale_bench(args.task, args.policy, args.rollouts, args.workers,
                                 args.rounds, cluster_rollouts=args.cluster_rollouts,
                                 store_records=args.store_records,
                                 log=lambda line: print(line, file=sys.stderr))
    result["machine"] = machine()
    tp = result["throughput"]
    print(f"ray/local throughput {result['ray_vs_local_throughput']} (target >= 0.95; per round "
          f"{tp['ray_vs_local_per_round']}); {tp['rollouts_per_hour_per_core']} rollouts/h per "
          f"core (CPU time), {tp['rollouts_per_hour_per_worker']} achieved per worker; "
          f"node removed: {result['rollouts_lost']} lost, "
          f"{result['rollouts_duplicated']} duplicated; store "
          f"{result['store_records_per_s']} records/s", file=sys.stderr)
    if args.json:
        print(json.dumps(result, indent=2))
    return 0
