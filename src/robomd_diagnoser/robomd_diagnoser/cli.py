"""The ``robomd`` command line. Each subcommand lives in ``robomd_diagnoser.commands.<name>``."""

from __future__ import annotations

import argparse
import importlib
import sys

from robomd_diagnoser import __version__

#: Subcommand modules, in ``robomd --help`` order. Each defines ``register(subparsers)``, which adds
#: its parser and sets ``func`` (called with the parsed args, returns an exit code). Modules of
#: other packages (robomd_ur5e) are skipped when that package is not installed.
COMMAND_MODULES: tuple[str, ...] = (
    "robomd_diagnoser.commands.diagnose",
    "robomd_diagnoser.commands.report",
    "robomd_diagnoser.commands.bringup",
    "robomd_diagnoser.commands.sweep",
    "robomd_diagnoser.commands.demos",
    "robomd_diagnoser.commands.train",
    "robomd_diagnoser.commands.evaluate",
    "robomd_diagnoser.commands.finetune",
    "robomd_diagnoser.commands.embed",
    "robomd_diagnoser.commands.query",
    "robomd_diagnoser.commands.bench",
    "robomd_diagnoser.commands.check_interfaces",
    "robomd_diagnoser.commands.space",
    "robomd_ur5e.commands.bringup_ur5e",
    "robomd_ur5e.commands.operator",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="robomd",
        description="RoboMD: diagnose where robot manipulation policies fail.")
    parser.add_argument("--version", action="version", version=f"robomd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name.split(".")[0] or name.startswith("robomd_diagnoser."):
                raise
            continue  # an optional package of the suite is not installed
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``robomd`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("robomd: interrupted; finished work is saved, rerun the same command to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
