"""``robomd`` subcommands of the real-robot package (``robomd.commands`` plug-ins)."""
