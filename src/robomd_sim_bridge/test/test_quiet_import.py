"""robosuite's import-time warnings about optional extras do not reach the terminal."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_world_then_robosuite_prints_no_optional_extra_warnings() -> None:
    code = ("import logging, robomd_sim_bridge.world, robosuite; "
            "logging.getLogger('robosuite_logs').warning('other warnings still show')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    text = out.stdout + out.stderr
    assert "other warnings still show" in text
    for noise in ("robosuite_models", "mink-based whole-body IK", "private macro file"):
        assert noise not in text, text


def test_building_a_robosuite_env_does_not_log_its_controller_file() -> None:
    code = ("import robomd_sim_bridge.world, robosuite; "
            "robosuite.make('Lift', robots='UR5e', has_renderer=False, "
            "has_offscreen_renderer=False, use_camera_obs=False).close(); print('built')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=180, check=True)
    text = out.stdout + out.stderr
    assert "built" in text
    assert "Loading controller configuration" not in text, text
