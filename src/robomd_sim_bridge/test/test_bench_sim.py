"""Smoke test of ``robomd bench sim`` at tiny sizes (builds real worlds: slow)."""

from __future__ import annotations

import json
import os

import pytest

from robomd_diagnoser.cli.main import main


@pytest.mark.slow
def test_bench_sim_reports_every_figure(capsys):
    pytest.importorskip("robosuite")
    pytest.importorskip("robomd_sim_bridge.xml_rewrite")
    assert main(["bench", "sim", "--json", "--policy", "expert", "--camera-size", "32",
                 "--horizon", "20", "--steps", "3", "--rollouts", "2",
                 "--apply-perturbations", "1", "--apply-members", "2"]) == 0
    data = json.loads(capsys.readouterr().out)
    for key in ("apply_speedup_vs_xml", "apply_speedup_vs_xml_with_reset",
                "throughput_ratio_to_floor", "throughput_ratio_to_floor_cpu",
                "two_worker_speedup", "floor_rollouts_per_min", "apply_speedup_vs_xml_families",
                "apply_speedup_vs_xml_families_cpu"):
        assert data[key] > 0
    assert data["machine"]["cores"] == os.cpu_count()
    assert data["throughput"]["1_worker"]["rollouts"] == 2
    assert data["throughput"]["2_workers"]["workers"] == 2
    assert data["apply"]["perturbations"] == ["cube_red"]
    assert [n.count("+") for n in data["apply_families"]["perturbations"]] == [0, 1]
    for clock in ("per_step", "per_step_cpu"):
        assert set(data[clock]) >= {"physics_ms", "render_ms", "policy_ms", "floor_ms"}
