"""The ``robomd`` command line: :mod:`.main` builds it from the ``robomd.commands`` plug-ins;
each module here is one verb (``train_bc`` is ``robomd train-bc``...) and only parses arguments
and calls the library; :mod:`.bench` holds the ``robomd bench`` commands."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from robomd_diagnoser.config import PoolConfig


def not_positive(args: argparse.Namespace, names: Iterable[str]) -> str | None:
    """The error for the first of ``names`` that is set and below 1, else None.

    :param args: parsed arguments.
    :param names: attribute names (``camera_size`` is reported as ``--camera-size``).
    """
    for name in names:
        value = getattr(args, name)
        if value is not None and value < 1:
            return f"--{name.replace('_', '-')} must be >= 1, got {value}"
    return None


def add_executor_args(p: argparse.ArgumentParser) -> None:
    """``--executor local|ray`` and ``--ray-address`` (see :func:`executor_from_args`)."""
    p.add_argument("--executor", choices=("local", "ray"),
                   help="where rollouts run: worker processes on this machine (local, the "
                        "default) or actors on a Ray cluster (ray)")
    p.add_argument("--ray-address", metavar="ADDR",
                   help="with --executor ray: the cluster to join (auto, host:port or "
                        "ray://host:port); default: start a local Ray on this machine")


def executor_from_args(args: argparse.Namespace,
                       base: PoolConfig | None = None) -> PoolConfig:
    """The executor asked for on the command line, over ``base`` (e.g. a campaign's).

    :raises ConfigError: ``--ray-address`` without the ray executor.
    """
    import dataclasses

    from robomd_diagnoser.config import ConfigError, PoolConfig

    ex = base or PoolConfig()
    if args.executor and args.executor != ex.type:
        ex = PoolConfig(type=args.executor)
    if args.ray_address:
        if ex.type != "ray":
            raise ConfigError("--ray-address: only with the ray executor; add --executor ray")
        ex = dataclasses.replace(ex, address=args.ray_address)
    return ex
