"""The ``robomd`` command line. Each subcommand lives in ``robomd_diagnoser.commands.<name>``."""

from __future__ import annotations

import argparse
import importlib
import sys

from robomd_diagnoser import __version__

#: Subcommand modules, in ``robomd --help`` order. Each defines ``register(subparsers)``, which adds
#: its parser and sets ``func`` (called with the parsed args, returns an exit code).
COMMAND_MODULES: tuple[str, ...] = (
    "robomd_diagnoser.commands.check_interfaces",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="robomd",
        description="RoboMD: diagnose where robot manipulation policies fail.")
    parser.add_argument("--version", action="version", version=f"robomd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
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
