"""``robomd sweep``: ground-truth failure rates of every catalog perturbation (resumable)."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from robomd_diagnoser.cli import add_executor_args, executor_from_args, not_positive
from robomd_diagnoser.progress import add_progress_argument


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="roll out the nominal scene and every catalog perturbation N times (ground truth)",
        description="Rolls the policy out N times in the nominal scene and under each catalog "
                    "perturbation (repetition i uses seed S+i everywhere), stores every rollout "
                    "as it finishes in OUT/rollouts.sqlite, and writes failure_rates.csv/.json/"
                    ".png with Wilson 95%% intervals. Rerunning the same command resumes.")
    p.add_argument("--task", help="task whose catalog config/catalogs/<task>.yaml is swept "
                                  "(default: the task of --catalog)")
    p.add_argument("--catalog", type=Path, help="catalog YAML to sweep instead of the task's")
    p.add_argument("--policy", required=True,
                   help="policy spec: expert, bc, torchscript:<path>, module:<pkg.mod:fn> "
                        "(module: imports and runs that Python code, so a spec is trusted "
                        "input)")
    p.add_argument("--rollouts", type=int, default=10,
                   help="rollouts per perturbation and of the nominal scene (default: %(default)s)")
    p.add_argument("--workers", type=int,
                   help="parallel worlds (default: 1; with --executor ray, as many as the "
                        "cluster's CPUs allow)")
    add_executor_args(p)
    p.add_argument("--seed", type=int, default=0,
                   help="seed of repetition 0; repetition i uses seed+i (default: %(default)s)")
    p.add_argument("--horizon", type=int, default=150,
                   help="step limit per rollout (default: %(default)s)")
    p.add_argument("--camera-size", type=int, default=84,
                   help="camera resolution in pixels (default: %(default)s)")
    p.add_argument("--robot", default="UR5e", help="robot (default: %(default)s)")
    p.add_argument("--video", action="store_true", help="keep an MP4 of each rollout in OUT/videos")
    p.add_argument("--out", type=Path,
                   help="output directory (default: runs/sweep-<task>-<policy>)")
    p.add_argument("--limit", type=int,
                   help="run at most this many new rollouts now; rerun to continue")
    p.add_argument("--ground-truth", type=Path, metavar="FILE",
                   help="once the sweep is complete, also write its per-member failures and "
                        "trials as a space ground truth (for robomd bench diagnose)")
    add_progress_argument(p)
    p.set_defaults(func=run)


def _slug(text: str) -> str:
    """File-name-safe short form of a policy spec: ``torchscript:/a/b.pt`` -> ``torchscript-b``."""
    kind, _, rest = text.partition(":")
    tail = Path(rest).stem if rest else ""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{kind}-{tail}" if tail else kind).strip("-")


def run(args: argparse.Namespace) -> int:
    from robomd_diagnoser.catalog import CatalogError, load_catalog
    from robomd_diagnoser.config import MAX_COUNT, MAX_WORKERS, ConfigError, WorldSettings
    from robomd_diagnoser.jobs import RolloutJobError
    from robomd_diagnoser.paths import find_config
    from robomd_diagnoser.policy import PolicyError
    from robomd_diagnoser.store import StoreError
    from robomd_diagnoser.sweep import SweepError, SweepSettings, run_sweep, write_ground_truth

    def fail(msg: str) -> int:
        print(f"robomd sweep: error: {msg}", file=sys.stderr)
        return 2

    if error := not_positive(args, ("rollouts", "workers", "horizon", "camera_size", "limit")):
        return fail(error)
    if args.workers is not None and args.workers > MAX_WORKERS:
        return fail(f"--workers: at most {MAX_WORKERS} (one simulator process each), got "
                    f"{args.workers}")
    if args.rollouts > MAX_COUNT:
        return fail(f"--rollouts: at most {MAX_COUNT}, got {args.rollouts}")
    if args.task is None and args.catalog is None:
        return fail("give --task (e.g. --task lift) or --catalog PATH")
    try:
        executor_config = executor_from_args(args)
    except ValueError as exc:
        return fail(str(exc))
    try:
        catalog_path = args.catalog or find_config(f"catalogs/{args.task}.yaml")
        catalog = load_catalog(catalog_path)
        if args.task and catalog.task != args.task:
            return fail(f"--task {args.task} but catalog {catalog_path} is for task "
                        f"{catalog.task!r}; drop --task or pick the matching catalog")
        settings = SweepSettings.of(catalog, args.policy, args.seed, args.horizon,
                                    args.camera_size, args.robot)
        world = WorldSettings(catalog=str(Path(catalog_path).resolve()), policy=args.policy,
                              robot=args.robot, camera_size=args.camera_size,
                              horizon=args.horizon).check(lambda f: f"--{f.replace('_', '-')}")
    except (CatalogError, ConfigError, FileNotFoundError) as exc:
        return fail(str(exc))
    out = args.out or Path("runs") / f"sweep-{catalog.task}-{_slug(args.policy)}"
    info = {"task": catalog.task, "policy": args.policy, "rollouts": args.rollouts,
            "seed": args.seed, "horizon": args.horizon, "camera_size": args.camera_size,
            "robot": args.robot, "catalog": str(catalog_path)}

    def plan(total: int, stored: int) -> None:
        print(f"sweep {catalog.task} / {args.policy}: {len(catalog) + 1} scenes x "
              f"{args.rollouts} rollouts = {total}; {stored} already stored in "
              f"{out / 'rollouts.sqlite'}", file=sys.stderr)

    try:
        outcome = run_sweep(out, settings, catalog, world, args.rollouts, workers=args.workers,
                            limit=args.limit, videos=args.video,
                            progress=not args.no_progress, info=info, on_plan=plan,
                            executor=executor_config)
    except (StoreError, SweepError, PolicyError) as exc:  # a policy that cannot be loaded
        return fail(str(exc))
    except RolloutJobError as exc:
        return fail(f"{exc}\n(finished rollouts are stored; fix the cause and rerun)")
    _print_table(outcome.rows)
    print(f"wrote {', '.join(str(p) for p in outcome.reports)}" +
          ("" if outcome.complete else " (partial: rerun the same command to finish)"))
    if args.ground_truth is not None:
        if not outcome.complete:
            print(f"not writing {args.ground_truth} yet: the sweep is partial")
        else:
            command = (f"robomd sweep --catalog {catalog_path} --policy {args.policy} "
                       f"--rollouts {args.rollouts} --seed {args.seed} --horizon {args.horizon} "
                       f"--camera-size {args.camera_size} --robot {args.robot} --workers 2 "
                       f"--out runs/gt-{Path(catalog_path).stem} --ground-truth "
                       f"{args.ground_truth}  # resumable; --limit N builds it in pieces")
            write_ground_truth(outcome.rows, args.ground_truth, Path(catalog_path).stem,
                               command, info)
            print(f"wrote {args.ground_truth} ({len(outcome.rows) - 1} members)")
    return 0


def _print_table(rows: list) -> None:
    width = max(24, *(len(r.name) for r in rows))  # space members have long names
    print(f"{'perturbation':<{width}} {'fail':>9} {'rate':>6}  {'95% interval':<15} above nominal")
    for r in rows:
        fr = r.rate
        rate = f"{fr.rate:.2f}" if fr.n else "-"
        print(f"{r.name:<{width}} {fr.failures:>4}/{fr.n:<4} {rate:>6}  [{fr.lo:.2f}, {fr.hi:.2f}]"
              f"{'':<4} {'yes' if r.above_nominal else ''}")
