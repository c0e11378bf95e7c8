"""Observation key maps for policies trained elsewhere (robomimic, LeRobot, policy servers).

A checkpoint names its inputs its own way (``robot0_eef_pos``, ``observation.state``...). A key
map is a JSON object ``{checkpoint key: our observation key}``; an adapter starts from its
defaults and a user's map overrides them. Options follow the path in a spec as a query string:
``robomimic:model.pth?keys=keys.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qsl

from robomd_diagnoser.policy import PolicyError


def split_options(arg: str, allowed: tuple[str, ...], spec: str) -> tuple[str, dict[str, str]]:
    """Split ``path?name=value&...`` into the path and its options.

    :raises PolicyError: naming an option not in ``allowed``.
    """
    path, sep, query = arg.partition("?")
    options = dict(parse_qsl(query, keep_blank_values=True)) if sep else {}
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise PolicyError(f"policy spec {spec!r}: unknown option(s) {unknown}; options: "
                          f"{', '.join(allowed)}")
    return path, options


def load_key_map(path: str | Path) -> dict[str, str]:
    """Read a JSON map ``{checkpoint or server key: our observation key}``.

    :raises PolicyError: naming the file when it is missing or not a map of strings.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise PolicyError(f"observation key map {path}: cannot read it as JSON ({exc})") \
            from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                             for k, v in data.items()):
        raise PolicyError(f"observation key map {path}: must be a JSON object of strings, "
                          'e.g. {"observation.image": "image", "observation.state": "eef_pos"}')
    return data


def unmapped_inputs(needed: list[str], key_map: dict[str, str], source: str) -> None:
    """Raise if a checkpoint input has no observation key mapped to it.

    :param needed: the checkpoint's input names.
    :param key_map: checkpoint key -> our key.
    :param source: the checkpoint, for the message.
    :raises PolicyError: naming the unmapped inputs and the fix.
    """
    missing = [k for k in needed if k not in key_map]
    if missing:
        raise PolicyError(f"{source} expects inputs {missing} that no observation key maps to; "
                          "add them to a key map (JSON {checkpoint key: observation key}, "
                          "observation keys: image, eef_pos, gripper, object) and pass it as "
                          "?keys=<file>")
