#!/usr/bin/env python3
"""Regenerate requirements.lock from requirements.in (run after editing requirements.in).

Uses pip's resolver report and names each package by its wheel's project name: the ROS wheels
carry metadata names (``action_msgs``) that differ from the names they are served under
(``ros-action-msgs``), so ``pip freeze`` output cannot be installed back.
"""

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

WS = Path(__file__).resolve().parents[1]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
                        "--quiet", "--report", str(report), "-r", str(WS / "requirements.in")],
                       check=True)
        items = json.loads(report.read_text())["install"]
    pins = set()
    for item in items:
        filename = item["download_info"]["url"].rsplit("/", 1)[-1]
        project = filename.split("-")[0] if filename.endswith(".whl") else \
            re.sub(r"-[0-9].*$", "", filename)
        pins.add(f"{re.sub(r'[-_.]+', '-', project).lower()}=={item['metadata']['version']}")
    header = ("# Fully resolved, pinned environment installed by scripts/setup.sh.\n"
              "# Regenerate after editing requirements.in: .venv/bin/python scripts/lock.py\n")
    (WS / "requirements.lock").write_text(header + "\n".join(sorted(pins)) + "\n")
    print(f"requirements.lock: {len(pins)} pinned packages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
