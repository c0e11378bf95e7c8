"""Campaign decision settings: threshold, confidence, stop_when_decided."""

from __future__ import annotations

import json

import pytest
from diagnosis_fixtures import write_campaign, write_files

from robomd_diagnoser.campaign import RESULT_FILE, run_campaign
from robomd_diagnoser.config import ConfigError, load_campaign


@pytest.mark.parametrize("change,match", [
    ({"threshold": 1.5}, "campaign.threshold"),
    ({"confidence": 0}, "campaign.confidence"),
    ({"stop_when_decided": "yes"}, "campaign.stop_when_decided"),
    ({"agent": {"type": "factor", "explore": 2.0}}, "campaign.agent.explore"),
    ({"agent": {"type": "uniform", "shuffle": 1}}, "campaign.agent.shuffle"),
])
def test_decision_settings_are_validated(tmp_path, change, match):
    with pytest.raises(ConfigError, match=match):
        load_campaign(write_campaign(tmp_path, **change))


def test_defaults_leave_the_resume_fingerprint_unchanged(tmp_path):
    cfg = load_campaign(write_campaign(tmp_path))
    assert (cfg.threshold, cfg.confidence, cfg.stop_when_decided) == (0.5, 0.95, False)
    assert "threshold" not in cfg.fingerprint()
    changed = load_campaign(write_campaign(tmp_path, threshold=0.3))
    assert changed.fingerprint()["threshold"] == 0.3
    ppo = load_campaign(write_campaign(tmp_path, agent={"type": "ppo"}))
    assert "mask_decided" not in ppo.fingerprint()["agent"]
    masked = load_campaign(write_campaign(tmp_path, agent={"type": "ppo", "mask_decided": True}))
    assert masked.fingerprint()["agent"]["mask_decided"] is True


def test_good_arm_campaign_stops_when_every_member_is_decided(tmp_path):
    # a always fails, the others at the nominal 5%: each is decided after a few rollouts
    path = write_campaign(tmp_path, agent={"type": "good_arm"}, budget=400,
                          stop_when_decided=True)
    write_files(tmp_path, {"a": 1.0, "b": 0.0, "c": 0.0, "d": 0.0, "e": 0.0})
    result = run_campaign(load_campaign(path), progress=False)
    data = json.loads((result.out_dir / RESULT_FILE).read_text())
    modes = {m["name"]: m for m in data["diagnosis"]["modes"]}
    assert modes["a"]["decision"] == "failure mode" and modes["a"]["lo"] >= 0.5
    assert all(modes[n]["decision"] == "not a failure mode" for n in "bcde")
    assert result.new_rollouts < 400, "stopped once decided, before the budget"
    assert data["diagnosis"]["num_decided_failure_modes"] == 1


def test_a_campaign_over_a_factor_space_uses_its_levels(tmp_path):
    """The factor agent and the diagnosis see the members' levels; the report re-scores the
    whole space against a space ground truth."""
    import yaml

    from robomd_diagnoser.analysis import load_ground_truth
    from robomd_diagnoser.catalog import load_catalog
    from robomd_diagnoser.report import load_result

    cat = tmp_path / "space.yaml"
    cat.write_text(yaml.safe_dump({"task": "toy", "families": [
        {"name": "mass", "factor": "object_mass", "target": "cube", "values": [2, 5, 20]},
        {"name": "noise", "factor": "action_noise", "values": [0.1, 0.2, 0.5]}],
        "combinations": {"order": 2}}))
    space = load_catalog(cat)
    rates = {n: 1.0 if "mass_20" in n else 0.0 for n in space.names}
    gt = tmp_path / "truth.json"
    gt.write_text(json.dumps({"space": "toy", "command": "test", "members": [
        {"name": m.name, "levels": [list(lv) for lv in m.levels],
         "failures": int(rates[m.name] * 4), "trials": 4} for m in space.space]}))
    table = tmp_path / "rates.json"
    table.write_text(json.dumps({"task": "toy", "nominal": {"failure_rate": 0.0},
                                 "perturbations": [{"name": n, "failure_rate": r}
                                                   for n, r in rates.items()]}))
    path = write_campaign(tmp_path, catalog=str(cat), agent={"type": "factor"}, budget=40,
                          world={"type": "table", "failure_rates": str(table), "horizon": 40})
    result = run_campaign(load_campaign(path), progress=False)
    data = json.loads((result.out_dir / RESULT_FILE).read_text())
    assert data["space"]["combinations"] == {"order": 2}
    effects = {(e["family"], e["level"]): e for e in data["diagnosis"]["level_effects"]}
    assert ("mass", "20") in effects, "level effects are per family level, not per member"
    evidence = [p for m in data["diagnosis"]["modes"] if (p := m.get("prediction"))]
    assert evidence and all(len(p["evidence"]) >= 1 for p in evidence)
    rescored = load_result(result.out_dir, load_ground_truth(gt))
    assert rescored["diagnosis"]["accuracy"]["pairs"] > 0
    assert len(rescored["diagnosis"]["modes"]) == len(space) == 15
    again = {m["name"]: m["prediction"] for m in rescored["diagnosis"]["modes"]}
    assert again == {m["name"]: m["prediction"] for m in data["diagnosis"]["modes"]}
    fm = rescored["diagnosis"]["accuracy"]["failure_modes"]
    predicted = sum(r["predicted"] for r in fm["confirmed"] + fm["refuted"])
    assert predicted == sum(p["decision"] == "failure mode" and m["decision"] == "undecided"
                            for m in data["diagnosis"]["modes"] if (p := m.get("prediction")))
    assert fm["truth_failure_modes"] == 4 and fm["reported"] >= 1  # mass_20, alone or paired


def test_predictions_count_as_decisions_for_stop_when_decided(tmp_path):
    from types import SimpleNamespace

    import numpy as np

    from robomd_diagnoser.campaign import all_decided

    def predicting(*indices):
        return SimpleNamespace(predictions=lambda: [SimpleNamespace(index=i) for i in indices])

    config = load_campaign(write_campaign(tmp_path))  # threshold 0.5, confidence 0.95
    counts = np.array([[20, 20], [0, 20], [0, 0]])  # failing, passing, never tried
    assert not all_decided(counts, config)
    assert not all_decided(counts, config, predicting(0))
    assert all_decided(counts, config, predicting(2))


def test_diagnose_prints_the_top_of_a_large_space_and_says_where_the_rest_is(tmp_path, capsys):
    import yaml

    from robomd_diagnoser.catalog import load_catalog
    from robomd_diagnoser.cli.diagnose import TABLE_ROWS
    from robomd_diagnoser.cli.main import main

    cat = tmp_path / "space.yaml"
    cat.write_text(yaml.safe_dump({"task": "toy", "families": [
        {"name": "mass", "factor": "object_mass", "target": "cube", "values": [2, 5, 10, 20]},
        {"name": "noise", "factor": "action_noise", "values": [0.1, 0.2, 0.3, 0.5]},
        {"name": "yaw", "factor": "object_yaw", "target": "cube", "values": [10, 20, 30, 40]}],
        "combinations": {"order": 2}}))
    names = load_catalog(cat).names
    assert len(names) == 60 > TABLE_ROWS
    table = tmp_path / "rates.json"
    table.write_text(json.dumps({"task": "toy", "nominal": {"failure_rate": 0.0},
                                 "perturbations": [{"name": n, "failure_rate": 0.0}
                                                   for n in names]}))
    path = write_campaign(tmp_path, catalog=str(cat), agent={"type": "random"}, budget=4,
                          world={"type": "table", "failure_rates": str(table), "horizon": 40})
    assert main(["diagnose", "--config", str(path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    ranked = [line for line in out.splitlines() if line.strip().split(" ")[0].isdigit()]
    assert len(ranked) == TABLE_ROWS
    assert f"... {60 - TABLE_ROWS} more (every member is in" in out
