"""Subcommands of the ``robomd`` command line (see :mod:`robomd_diagnoser.cli`)."""
