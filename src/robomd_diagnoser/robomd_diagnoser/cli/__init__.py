"""The ``robomd`` command line: :mod:`.main` builds it from the ``robomd.commands`` plug-ins;
each module here is one verb (``train_bc`` is ``robomd train-bc``...) and only parses arguments
and calls the library; :mod:`.bench` holds the ``robomd bench`` commands."""

from __future__ import annotations

import argparse
from collections.abc import Iterable


def not_positive(args: argparse.Namespace, names: Iterable[str]) -> str | None:
    """The error for the first of ``names`` that is set and below 1, else None.

    :param args: parsed arguments.
    :param names: attribute names (``camera_size`` is reported as ``--camera-size``).
    """
    for name in names:
        value = getattr(args, name)
        if value is not None and value < 1:
            return f"--{name.replace('_', '-')} must be >= 1, got {value}"
    return None
