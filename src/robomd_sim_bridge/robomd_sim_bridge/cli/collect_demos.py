"""``robomd collect-demos``: successful scripted-expert demonstrations for behaviour cloning."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from robomd_sim_bridge.cli import add_demo_arguments, check_demo_arguments


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "collect-demos",
        help="record successful scripted-expert demonstrations (optionally under perturbations)",
        description="Runs the scripted expert with temporally correlated action noise in W "
                    "simulator processes and saves each successful episode as OUT/<scene>/"
                    "<scene>_s<seed>.npz (image, eef_pos, gripper, and the expert's noise-free "
                    "action as the label). Seeds S, S+1, ... are tried in order until N episodes "
                    "succeeded; rerunning the same command resumes.")
    add_demo_arguments(p)
    p.add_argument("--workers", type=int, default=1, help="parallel simulator processes "
                   "(default: %(default)s)")
    p.add_argument("--camera-size", type=int, default=84, help="default: %(default)s")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from robomd_diagnoser.jobs import RolloutJobError

    def fail(msg: str) -> int:
        print(f"robomd collect-demos: error: {msg}", file=sys.stderr)
        return 2

    try:
        catalog_path = check_demo_arguments(args, ("episodes", "workers", "horizon",
                                                   "camera_size"))
    except ValueError as exc:
        return fail(str(exc))
    from robomd_sim_bridge.demos import DemoError, DemoSettings, collect_demos

    settings = DemoSettings(catalog=str(Path(catalog_path).resolve()),
                            perturbations=tuple(args.perturb), noise=args.noise,
                            horizon=args.horizon, camera_size=args.camera_size)
    try:
        summary = collect_demos(settings, args.out, args.episodes, workers=args.workers,
                                seed=args.seed, log=lambda line: print(line, flush=True))
    except (DemoError, RolloutJobError) as exc:
        return fail(f"{exc}\n(saved episodes are kept; fix the cause and rerun)")
    print(f"{summary.saved} successful episodes ({summary.frames} frames) in {summary.directory}; "
          f"expert success {summary.successes}/{summary.attempts} over the attempted seeds")
    return 0 if summary.saved >= args.episodes else 1
