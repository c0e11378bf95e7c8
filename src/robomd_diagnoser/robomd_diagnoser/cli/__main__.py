"""``python -m robomd_diagnoser.cli``: the ``robomd`` command line."""

import sys

from robomd_diagnoser.cli.main import main

sys.exit(main())
