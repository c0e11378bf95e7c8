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
