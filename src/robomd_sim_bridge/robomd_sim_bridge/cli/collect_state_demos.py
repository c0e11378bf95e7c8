"""``robomd collect-state-demos``: scripted-expert state demonstrations, without rendering."""

from __future__ import annotations

import argparse
import sys

from robomd_sim_bridge.cli import add_demo_arguments, check_demo_arguments


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "collect-state-demos",
        help="record successful scripted-expert episodes as low-dimensional state (no camera)",
        description="Runs the scripted expert with temporally correlated action noise and saves "
                    "each successful episode as OUT/<scene>_s<seed>.npz (eef_pos, gripper, "
                    "object state, and the expert's noise-free action). Seeds S, S+1, ... are "
                    "tried in order until N succeeded; rerunning resumes. For "
                    "`robomd train-state-bc`.")
    add_demo_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        catalog_path = check_demo_arguments(args, ("episodes", "horizon"))
    except ValueError as exc:
        print(f"robomd collect-state-demos: error: {exc}", file=sys.stderr)
        return 2
    from robomd_sim_bridge.state_demos import collect_state_demos

    summary = collect_state_demos(catalog_path, args.out, args.episodes,
                                  perturbations=tuple(args.perturb), noise=args.noise,
                                  horizon=args.horizon, seed=args.seed,
                                  log=lambda line: print(line, flush=True))
    print(f"{len(summary.files)} successful episodes ({summary.frames} frames) in {args.out}; "
          f"expert success {summary.successes}/{summary.attempts} over the seeds run now")
    return 0 if len(summary.files) >= args.episodes else 1
