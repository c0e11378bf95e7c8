"""``robomd bench <what>``: measured performance figures for this machine.

Each benchmark is a module registered in the ``robomd.bench`` entry-point group; it defines
``register(bench_subparsers)``, which adds its parser and sets ``func`` like any subcommand, and
only parses arguments: the experiment itself is a library function (:mod:`robomd_diagnoser.
benchmarks`, or the sibling package's own module).
"""

from __future__ import annotations

import argparse

from robomd_diagnoser.plugins import BENCH, load_all


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure performance on this machine",
                       description="Performance benchmarks; each prints its figures and can "
                                   "write them as JSON.")
    bench_sub = p.add_subparsers(dest="bench", metavar="<benchmark>", required=True)
    for _name, module in load_all(BENCH):
        module.register(bench_sub)
