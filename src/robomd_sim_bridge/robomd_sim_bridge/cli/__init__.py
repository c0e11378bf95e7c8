"""``robomd`` subcommands of the simulation package (``robomd.commands`` and ``robomd.bench``
plug-ins): ``collect-demos``, ``collect-state-demos`` and ``bench sim``."""

from __future__ import annotations

import argparse
from pathlib import Path

from robomd_diagnoser.cli import not_positive


def add_demo_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments both demonstration commands take: the scenes, how many episodes, the
    expert's noise, the seeds and the step limit."""
    p.add_argument("--task", default="lift", help="task (default: %(default)s)")
    p.add_argument("--catalog", type=Path, help="catalog YAML instead of the task's")
    p.add_argument("--episodes", type=int, required=True, help="successful episodes to save")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--perturb", nargs="*", default=[], metavar="NAME",
                   help="catalog perturbations applied together to every episode")
    p.add_argument("--noise", type=float, default=0.2,
                   help="std of the executed action noise, normalised action units "
                        "(default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="first seed (default: %(default)s)")
    p.add_argument("--horizon", type=int, default=150, help="step limit (default: %(default)s)")


def check_demo_arguments(args: argparse.Namespace, positive: tuple[str, ...]) -> Path:
    """Validate the demonstration arguments and return the catalog's path.

    :param args: parsed arguments of :func:`add_demo_arguments` (and more).
    :param positive: argument names that must be >= 1.
    :raises ValueError: naming the argument and what it must be, or the catalog's problem.
    """
    from robomd_diagnoser.catalog import CatalogError, load_catalog
    from robomd_diagnoser.paths import find_config

    if error := not_positive(args, positive):
        raise ValueError(error)
    if args.noise < 0:
        raise ValueError(f"--noise must be >= 0, got {args.noise}")
    try:
        catalog_path = Path(args.catalog or find_config(f"catalogs/{args.task}.yaml"))
        load_catalog(catalog_path).subset(args.perturb)
    except (CatalogError, FileNotFoundError) as exc:
        raise ValueError(str(exc)) from None
    return catalog_path
