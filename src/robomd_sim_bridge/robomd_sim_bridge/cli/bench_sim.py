"""``robomd bench sim``: where a simulated rollout's time goes, and how close we run to the floor
(the experiment: :mod:`robomd_sim_bridge.benchmark`)."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sim", help="per-step costs, rollout throughput (1 and 2 workers), perturbation latency",
        description="Benchmarks the simulated world on this machine: per-step physics, rendering "
                    "and policy cost, achieved rollouts/minute for 1 and 2 workers against the "
                    "per-step floor, and in-place perturbation against XML rewrite + reset.")
    p.add_argument("--task", default="lift", help="task (default: %(default)s)")
    p.add_argument("--policy", default="auto",
                   help="policy spec; auto = the shipped bc policy if present, else expert")
    p.add_argument("--camera-size", type=int, default=84, help="camera pixels (default: 84)")
    p.add_argument("--horizon", type=int, default=150, help="rollout step limit (default: 150)")
    p.add_argument("--steps", type=int, default=60,
                   help="control steps timed for the per-step costs (default: %(default)s)")
    p.add_argument("--rollouts", type=int, default=12,
                   help="rollouts per throughput measurement (default: %(default)s)")
    p.add_argument("--apply-perturbations", type=int, default=6,
                   help="catalog perturbations timed each way, spread over the catalog "
                        "(default: %(default)s)")
    p.add_argument("--apply-members", type=int, default=12,
                   help="members of the task's factor space (config/catalogs/<task>_factors.yaml)"
                        " timed each way, a seeded sample over orders (default: %(default)s)")
    p.add_argument("--json", action="store_true",
                   help="print the figures as JSON on stdout (the summary goes to stderr)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from robomd_sim_bridge.benchmark import measure

    result = measure(args.task, args.policy, args.camera_size, args.horizon, args.steps,
                     args.rollouts, args.apply_perturbations, args.apply_members,
                     say=lambda m: print(m, file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps(result, indent=2))
    return 0
