"""The ``robomd`` command line: one subcommand per verb, each a module registered in the
``robomd.commands`` entry-point group (this package's and those of the installed siblings)."""

from __future__ import annotations

import argparse
import sys

from robomd_diagnoser import __version__
from robomd_diagnoser.plugins import COMMANDS, load_all


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every installed subcommand.

    Each command module defines ``register(subparsers)``, which adds its parser and sets ``func``
    (called with the parsed args, returns an exit code).
    """
    parser = argparse.ArgumentParser(
        prog="robomd",
        description="RoboMD: diagnose where robot manipulation policies fail.")
    parser.add_argument("--version", action="version", version=f"robomd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for _name, module in load_all(COMMANDS):
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
