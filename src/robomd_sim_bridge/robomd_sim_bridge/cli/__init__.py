"""``robomd`` subcommands of the simulation package (``robomd.commands`` and ``robomd.bench``
plug-ins): ``collect-demos`` and ``bench sim``."""
