"""Where shared configuration (perturbation catalogs, campaign YAML) is found.

Search order for a path relative to ``config/``:
1. ``$ROBOMD_CONFIG_DIR`` (a directory laid out like ``config/``);
2. the source workspace's ``config/`` (when running from a checkout);
3. the installed ament share directory ``share/robomd_diagnoser/config``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV_VAR = "ROBOMD_CONFIG_DIR"
PACKAGE = "robomd_diagnoser"


def config_dirs() -> list[Path]:
    """Candidate ``config`` directories, in search order (existing ones only)."""
    candidates: list[Path] = []
    if os.environ.get(ENV_VAR):
        candidates.append(Path(os.environ[ENV_VAR]))
    # Source checkout: <ws>/src/robomd_diagnoser/robomd_diagnoser/paths.py -> <ws>/config
    candidates.append(Path(__file__).resolve().parents[3] / "config")
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    # Installed package: <prefix>/lib/python3.X/site-packages/robomd_diagnoser -> <prefix>
    prefixes.append(str(Path(__file__).resolve().parents[4]))
    prefixes.append(sys.prefix)
    candidates += [Path(p) / "share" / PACKAGE / "config" for p in prefixes]
    seen: set[Path] = set()
    found = []
    for c in candidates:
        if c.is_dir() and c not in seen:
            seen.add(c)
            found.append(c)
    return found


def find_config(relpath: str | Path) -> Path:
    """Locate a file under the shared ``config`` directory.

    :param relpath: path relative to ``config/``, e.g. ``catalogs/lift.yaml``.
    :raises FileNotFoundError: naming every place looked in and how to point elsewhere.
    """
    for d in config_dirs():
        if (d / relpath).is_file():
            return d / relpath
    looked = [str(d) for d in config_dirs()] or ["(no config directory found)"]
    raise FileNotFoundError(f"config file {relpath} not found in {', '.join(looked)}; set "
                            f"${ENV_VAR} to a directory containing it or pass an explicit path")
