"""``robomd bench <what>``: measured performance figures for this machine.

Each benchmark lives in its own module listed in :data:`BENCH_MODULES`; the module defines
``register(bench_subparsers)``, which adds its parser and sets ``func`` like any subcommand.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
from typing import Any

#: Benchmark modules, in ``robomd bench --help`` order.
BENCH_MODULES: tuple[str, ...] = (
    "robomd_diagnoser.commands.bench_sim",
    "robomd_diagnoser.commands.bench_diagnose",
    "robomd_diagnoser.commands.bench_ros",
    "robomd_diagnoser.commands.bench_continuous",
    "robomd_diagnoser.commands.bench_finetune",
    "robomd_diagnoser.commands.bench_scale",
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="measure performance on this machine",
                       description="Performance benchmarks; each prints its figures and can "
                                   "write them as JSON.")
    bench_sub = p.add_subparsers(dest="bench", metavar="<benchmark>", required=True)
    for name in BENCH_MODULES:
        importlib.import_module(name).register(bench_sub)


def machine() -> dict[str, Any]:
    """The machine a benchmark ran on: CPU model, cores, OS, Python."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version()}
