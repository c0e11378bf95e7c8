"""The ``robomd`` command line: one subcommand per verb, each a module registered in the
``robomd.commands`` entry-point group (this package's and those of the installed siblings)."""

from __future__ import annotations

import argparse
import sys

from robomd_diagnoser import __version__
from robomd_diagnoser.plugins import COMMANDS, load, load_all, names


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser with every installed subcommand, or with ``only`` that one (then no
    other command module is imported: ``robomd space describe`` does not pay for torch).

    Each command module defines ``register(subparsers)``, which adds its parser and sets ``func``
    (called with the parsed args, returns an exit code).
    """
    parser = argparse.ArgumentParser(
        prog="robomd",
        description="RoboMD: diagnose where robot manipulation policies fail.")
    parser.add_argument("--version", action="version", version=f"robomd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    modules = [load(COMMANDS, only, "command")] if only else [m for _n, m in load_all(COMMANDS)]
    for module in modules:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``robomd`` console script."""
    argv = sys.argv[1:] if argv is None else argv
    first = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(first if first in names(COMMANDS) else None)
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
