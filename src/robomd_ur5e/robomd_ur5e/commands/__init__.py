"""``robomd`` subcommands of the real-robot package (registered in robomd_diagnoser.cli)."""
