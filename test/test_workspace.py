"""Workspace-level checks: package manifests, lint, and the robomd command line."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from catkin_pkg.package import parse_package

WS = Path(__file__).resolve().parents[1]
PACKAGES = ["robomd_msgs", "robomd_diagnoser", "robomd_sim_bridge", "robomd_ur5e"]


@pytest.mark.parametrize("name", PACKAGES)
def test_package_xml_is_valid_format_3(name: str) -> None:
    pkg = parse_package(str(WS / "src" / name / "package.xml"))
    pkg.validate()
    assert pkg.name == name
    assert pkg.package_format == 3
    build_type = pkg.get_build_type()
    assert build_type == ("ament_cmake" if name == "robomd_msgs" else "ament_python")
    if build_type == "ament_python":
        assert (WS / "src" / name / "resource" / name).is_file()
        assert (WS / "src" / name / "setup.cfg").is_file()


def test_ruff_is_clean() -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    proc = subprocess.run([ruff, "check", str(WS)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _robomd(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("robomd")
    assert exe, "robomd is not on PATH: source scripts/env.sh"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120)


def test_robomd_version_and_help() -> None:
    from robomd_diagnoser import __version__

    version = _robomd("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"robomd {__version__}"
    helptext = _robomd("--help")
    assert helptext.returncode == 0
    assert "check-interfaces" in helptext.stdout


def test_robomd_rejects_unknown_command() -> None:
    proc = _robomd("no-such-command")
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr


def test_core_imports_without_rclpy() -> None:
    """The ROS-free core must import with rclpy unavailable."""
    code = ("import sys; sys.modules['rclpy'] = None\n"
            "import importlib, pkgutil, robomd_diagnoser\n"
            "for m in pkgutil.walk_packages(robomd_diagnoser.__path__, 'robomd_diagnoser.'):\n"
            "    if '.ros' not in m.name and not m.name.endswith('_node'):\n"
            "        importlib.import_module(m.name)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
