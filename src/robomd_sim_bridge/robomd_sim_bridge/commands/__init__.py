"""Subcommands of the `robomd` command line that need the simulator."""
