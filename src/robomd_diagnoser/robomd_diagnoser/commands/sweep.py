"""``robomd sweep``: ground-truth failure rates of every catalog perturbation (resumable)."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from robomd_diagnoser.commands import add_executor_args, executor_from_args, not_positive


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
                   help="policy spec: expert, bc, torchscript:<path>, module:<pkg.mod:fn>")
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
    p.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    p.set_defaults(func=run)


def _slug(text: str) -> str:
    """File-name-safe short form of a policy spec: ``torchscript:/a/b.pt`` -> ``torchscript-b``."""
    kind, _, rest = text.partition(":")
    tail = Path(rest).stem if rest else ""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{kind}-{tail}" if tail else kind).strip("-")


def run(args: argparse.Namespace) -> int:
    from robomd_diagnoser.catalog import CatalogError, load_catalog
    from robomd_diagnoser.executor import RolloutJobError, WorldSpec, make_executor
    from robomd_diagnoser.paths import find_config
    from robomd_diagnoser.store import RolloutStore, StoreError
    from robomd_diagnoser.sweep import (
        SweepError,
        SweepSettings,
        check_settings,
        run_jobs,
        sweep_jobs,
        sweep_table,
        write_reports,
    )

    def fail(msg: str) -> int:
        print(f"robomd sweep: error: {msg}", file=sys.stderr)
        return 2

    if error := not_positive(args, ("rollouts", "workers", "horizon", "camera_size", "limit")):
        return fail(error)
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
    except (CatalogError, FileNotFoundError) as exc:
        return fail(str(exc))
    out = args.out or Path("runs") / f"sweep-{catalog.task}-{_slug(args.policy)}"
    jobs = sweep_jobs(catalog, args.rollouts, args.seed, args.horizon,
                      out / "videos" if args.video else None)
    try:
        store = RolloutStore(out / "rollouts.sqlite")
    except StoreError as exc:
        return fail(str(exc))
    with store:
        try:
            check_settings(store, settings)
        except SweepError as exc:
            return fail(str(exc))
        spec = WorldSpec(catalog=str(Path(catalog_path).resolve()), policy=args.policy,
                         robot=args.robot, camera_size=args.camera_size, horizon=args.horizon)
        missing = sum(not store.has(j.key) for j in jobs)
        print(f"sweep {catalog.task} / {args.policy}: {len(catalog) + 1} scenes x {args.rollouts} "
              f"rollouts = {len(jobs)}; {len(jobs) - missing} already stored in {store.path}",
              file=sys.stderr)
        to_run = missing if args.limit is None else min(missing, args.limit)
        if to_run:
            try:
                with make_executor(spec, args.workers, executor_config, to_run) as executor:
                    run_jobs(store, executor, jobs, args.limit, progress=not args.no_progress)
            except RolloutJobError as exc:
                return fail(f"{exc}\n(finished rollouts are stored; fix the cause and rerun)")
        rows = sweep_table(store, catalog, args.rollouts)
        complete = all(store.has(j.key) for j in jobs)
    info = {"task": catalog.task, "policy": args.policy, "rollouts": args.rollouts,
            "seed": args.seed, "horizon": args.horizon, "camera_size": args.camera_size,
            "robot": args.robot, "catalog": str(catalog_path), "complete": complete}
    paths = write_reports(rows, out, info)
    _print_table(rows)
    print(f"wrote {', '.join(str(p) for p in paths)}" +
          ("" if complete else " (partial: rerun the same command to finish)"))
    return 0


def _print_table(rows: list) -> None:
    print(f"{'perturbation':<24} {'fail':>9} {'rate':>6}  {'95% interval':<15} above nominal")
    for r in rows:
        fr = r.rate
        rate = f"{fr.rate:.2f}" if fr.n else "-"
        print(f"{r.name:<24} {fr.failures:>4}/{fr.n:<4} {rate:>6}  [{fr.lo:.2f}, {fr.hi:.2f}]"
              f"{'':<4} {'yes' if r.above_nominal else ''}")
