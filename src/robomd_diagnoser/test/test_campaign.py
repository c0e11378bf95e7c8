"""Campaign configs, runs, persistence and resume (including after SIGKILL)."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from diagnosis_fixtures import write_campaign

from robomd_diagnoser.campaign import RESULT_FILE, STORE_FILE, run_campaign
from robomd_diagnoser.config import CampaignConfig, ConfigError, load_campaign, parse_campaign
from robomd_diagnoser.paths import find_config
from robomd_diagnoser.store import RolloutStore


@pytest.mark.parametrize("change,match", [
    ({"agent": {"type": "ppx"}}, "campaign.agent.type: unknown 'ppx'; use one of ppo, a2c"),
    ({"agent": {"type": "ppo", "n_stpes": 8}}, "campaign.agent.n_stpes: unknown for agent"),
    ({"agent": {"type": "random", "learning_rate": 0.1}}, "it takes no hyper-parameters"),
    ({"agent": {"type": "ppo", "gamma": 1.5}}, "campaign.agent.gamma: must be <= 1"),
    ({"world": {"type": "mujoco"}}, "campaign.world.type: unknown 'mujoco'; use one of sim"),
    ({"world": {"type": "table"}}, "campaign.world.failure_rates: a table world needs"),
    ({"world": {"type": "sim", "image_size": 40}}, "campaign.world.image_size: unknown key"),
    ({"budget": 0}, "campaign.budget: must be >= 1"),
    ({"workers": 1.5}, "campaign.workers: expected an integer"),
    ({"rewards": {"failure": -1}}, "campaign.rewards.failure: must be > 0"),
    ({"budjet": 10}, "campaign.budjet: unknown key"),
    ({"catalog": "nope.yaml"}, "campaign.catalog: file 'nope.yaml' not found"),
])
def test_config_errors_name_the_field(tmp_path, change, match):
    data = yaml.safe_load(write_campaign(tmp_path).read_text())
    data.update(change)
    with pytest.raises(ConfigError, match=match.replace("(", "\\(").replace("[", "\\[")):
        parse_campaign(data, "test.yaml", tmp_path)


def test_config_defaults(tmp_path):
    cfg = load_campaign(write_campaign(tmp_path, agent={"type": "ppo"}))
    assert cfg.name == "campaign" and cfg.episode_cap == 3
    assert cfg.agent.params["learning_rate"] == 3e-4 and cfg.agent.params["clip_range"] == 0.2
    assert cfg.agent.params["n_epochs"] == 10 and cfg.agent.params["batch_size"] == 64
    assert dataclasses.replace(cfg, agent=dataclasses.replace(cfg.agent, type="thompson")
                               ).episode_cap == 1


@pytest.mark.parametrize("name", sorted(
    p.name for p in find_config("campaigns/lift_test.yaml").parent.glob("*.yaml")))
def test_shipped_campaigns_are_valid(name):
    cfg = load_campaign(find_config(f"campaigns/{name}"))
    assert cfg.task == "lift"
    assert cfg.world.type == ("real" if name.startswith("real_") else "sim")
    again = CampaignConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again.to_dict() == cfg.to_dict(), "stored settings read back as the same config"


def test_campaign_writes_a_diagnosis_and_resumes_without_rerunning(tmp_path):
    cfg = load_campaign(write_campaign(tmp_path, budget=30))
    first = run_campaign(cfg, progress=False)
    assert first.new_rollouts == 30 and first.replayed == 0
    result = json.loads((first.out_dir / RESULT_FILE).read_text())
    assert set(result["p_fail"]) == {"a", "b", "c", "d", "e"}
    assert result["diagnosis"]["modes"][0]["name"] == "a"
    assert (first.out_dir / "agent.json").is_file()
    assert sorted(p.name for p in (first.out_dir / "checkpoints").iterdir()) == []
    again = run_campaign(cfg, progress=False)
    assert again.new_rollouts == 0 and again.replayed == 30 and again.p_fail == first.p_fail
    more = run_campaign(dataclasses.replace(cfg, budget=40), progress=False)
    assert more.new_rollouts == 10
    with RolloutStore(first.out_dir / STORE_FILE) as store:
        assert store.count("agent/") == 40


def test_resume_with_other_settings_is_refused(tmp_path):
    cfg = load_campaign(write_campaign(tmp_path))
    run_campaign(cfg, progress=False)
    with pytest.raises(ConfigError, match="campaign.seed: started with 0, now 1"):
        run_campaign(dataclasses.replace(cfg, seed=1), progress=False)


def _diagnose_cmd(config: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "robomd_diagnoser.cli", "diagnose", "--config", str(config),
            "--out", str(out), "--no-progress"]


def _rows(out: Path) -> dict[str, tuple]:
    with RolloutStore(out / STORE_FILE) as store:
        return {r.key: (r.perturbations, r.seed, r.success, r.steps, r.created)
                for r in store.records()}


def test_sigkill_mid_campaign_loses_and_repeats_nothing(tmp_path):
    budget = 48
    config = write_campaign(
        tmp_path, budget=budget, workers=2, checkpoint_every=16,
        agent={"type": "ppo", "n_steps": 8, "batch_size": 16, "n_epochs": 2},
        world={"type": "table", "failure_rates": str(tmp_path / "failure_rates.json"),
               "horizon": 40, "rollout_seconds": 0.15})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = subprocess.Popen(_diagnose_cmd(config, killed), env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if (killed / STORE_FILE).is_file() and len(_rows(killed)) >= 12:
            break
        time.sleep(0.1)
    assert proc.poll() is None, f"campaign ended before it could be killed: {proc.stderr.read()}"
    os.killpg(proc.pid, signal.SIGKILL)  # the campaign and its environment workers, at once
    proc.wait()
    before = _rows(killed)
    assert 12 <= len(before) < budget and not (killed / RESULT_FILE).exists()

    resumed = subprocess.run(_diagnose_cmd(config, killed), env=env, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    after = _rows(killed)
    assert all(after[k] == v for k, v in before.items()), "a finished rollout changed or was lost"
    assert sorted(after) == [f"agent/{i:06d}/0" for i in range(budget)], "a step is missing"
    assert f"{budget - len(before)} new rollouts, {len(before)} replayed" in resumed.stdout

    # The interrupted-and-resumed campaign is the campaign that was never interrupted.
    subprocess.run(_diagnose_cmd(config, clean), env=env, check=True, capture_output=True,
                   timeout=300)
    uninterrupted = _rows(clean)
    assert {k: v[:4] for k, v in after.items()} == {k: v[:4] for k, v in uninterrupted.items()}
    p_killed = json.loads((killed / RESULT_FILE).read_text())["p_fail"]
    p_clean = json.loads((clean / RESULT_FILE).read_text())["p_fail"]
    assert p_killed == p_clean
    assert sorted(p.name for p in (killed / "checkpoints").iterdir()) == [
        "agent_000016.zip", "agent_000032.zip", "agent_000048.zip"]
    assert list((killed / "tensorboard").iterdir()), "PPO training curves are logged"
