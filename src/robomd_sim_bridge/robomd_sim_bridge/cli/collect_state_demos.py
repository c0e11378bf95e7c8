"""``robomd collect-state-demos``: scripted-expert state demonstrations, without rendering."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "collect-state-demos",
        help="record successful scripted-expert episodes as low-dimensional state (no camera)",
        description="Runs the scripted expert with temporally correlated action noise and saves "
                    "each successful episode as OUT/<scene>_s<seed>.npz (eef_pos, gripper, "
                    "object state, and the expert's noise-free action). Seeds S, S+1, ... are "
                    "tried in order until N succeeded; rerunning resumes. For "
                    "`robomd train-state-bc`.")
    p.add_argument("--task", default="lift", help="task (default: %(default)s)")
    p.add_argument("--catalog", type=Path, help="catalog YAML instead of the task's")
    p.add_argument("--episodes", type=int, required=True, help="successful episodes to save")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--perturb", nargs="*", default=[], metavar="NAME",
                   help="catalog perturbations applied together to every episode")
    p.add_argument("--noise", type=float, default=0.2,
                   help="std of the executed action noise (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="first seed (default: %(default)s)")
    p.add_argument("--horizon", type=int, default=150, help="step limit (default: %(default)s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from robomd_diagnoser.catalog import CatalogError, load_catalog
    from robomd_diagnoser.cli import not_positive
    from robomd_diagnoser.paths import find_config

    def fail(msg: str) -> int:
        print(f"robomd collect-state-demos: error: {msg}", file=sys.stderr)
        return 2

    if error := not_positive(args, ("episodes", "horizon")):
        return fail(error)
    if args.noise < 0:
        return fail(f"--noise must be >= 0, got {args.noise}")
    try:
        catalog_path = args.catalog or find_config(f"catalogs/{args.task}.yaml")
        load_catalog(catalog_path).subset(args.perturb)
    except (CatalogError, FileNotFoundError) as exc:
        return fail(str(exc))
    from robomd_sim_bridge.state_demos import collect_state_demos

    summary = collect_state_demos(catalog_path, args.out, args.episodes,
                                  perturbations=tuple(args.perturb), noise=args.noise,
                                  horizon=args.horizon, seed=args.seed,
                                  log=lambda line: print(line, flush=True))
    print(f"{len(summary.files)} successful episodes ({summary.frames} frames) in {args.out}; "
          f"expert success {summary.successes}/{summary.attempts} over the seeds run now")
    return 0 if len(summary.files) >= args.episodes else 1
