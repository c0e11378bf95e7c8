"""``robomd bench ros``: what the ROS 2 path costs per rollout compared with the in-process path
(the experiment: :mod:`robomd_diagnoser.benchmarks.ros`)."""

from __future__ import annotations

import argparse
import json
import sys

from robomd_diagnoser.benchmarks.ros import DEFAULT_PERTURBATIONS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ros", help="per-rollout overhead of the ROS 2 path versus in-process",
        description="Runs the same seeded rollouts in-process and through a sim bridge node over "
                    "DDS and reports the ratio of their per-rollout wall times.")
    p.add_argument("--task", default="lift", help="task (default: %(default)s)")
    p.add_argument("--policy", default="bc", help="policy spec (default: %(default)s)")
    p.add_argument("--seeds", type=int, default=3,
                   help="seeds per perturbation (default: %(default)s)")
    p.add_argument("--perturbations", default=",".join(DEFAULT_PERTURBATIONS),
                   help="comma-separated catalog names; empty = nominal (default: %(default)s)")
    p.add_argument("--camera-size", type=int, default=84)
    p.add_argument("--horizon", type=int, default=150)
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from robomd_diagnoser.benchmarks.ros import ros_overhead

    figures = ros_overhead(args.task, args.policy, args.seeds, args.perturbations.split(","),
                           args.camera_size, args.horizon,
                           log=lambda m: print(m, file=sys.stderr, flush=True))
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        for key, value in figures.items():
            print(f"{key:>26}: {value}")
    return 0
