"""Bad input and damaged files are refused with a message naming them (exit code 2 from the CLI):
sweep and campaign directory locks, policy errors, damaged stores and results, config and
catalog validation, resume checks, and a non-finite action aborting only its rollout."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from diagnosis_fixtures import NAMES, RATES, write_campaign, write_files

from robomd_diagnoser.campaign import RESULT_FILE, STORE_FILE, CampaignError, run_campaign
from robomd_diagnoser.catalog import CatalogError, load_catalog, parse_catalog
from robomd_diagnoser.cli.main import main
from robomd_diagnoser.config import ConfigError, WorldSettings, load_campaign, parse_campaign
from robomd_diagnoser.jobs import RolloutJob, run_job
from robomd_diagnoser.locks import DirectoryLock
from robomd_diagnoser.policy import PolicyError, as_action
from robomd_diagnoser.pools import LocalPool
from robomd_diagnoser.report import ReportError, load_result
from robomd_diagnoser.store import RolloutStore, StoreError
from robomd_diagnoser.sweep import SweepError, SweepSettings, run_sweep
from robomd_diagnoser.table_world import TableWorld
from robomd_diagnoser.world import RolloutStatus

# ----------------------------------------------------------------------------- 5: sweeps


def _table_sweep(tmp: Path, out: Path, rollouts: int = 2):
    cat, gt = write_files(tmp)
    catalog = load_catalog(cat)
    world = WorldSettings(type="table", catalog=str(cat), policy="table", failure_rates=str(gt))
    settings = SweepSettings.of(catalog, "table", 0, 40, 84, "UR5e")
    return run_sweep(out, settings, catalog, world, rollouts, progress=False)


def test_a_sweep_into_a_directory_in_use_is_refused(tmp_path):
    out = tmp_path / "sweep"
    with DirectoryLock(out), pytest.raises(SweepError, match="another robomd sweep or diagnose "
                                                             "is running in .*sweep"):
        _table_sweep(tmp_path, out)
    assert not (out / "rollouts.sqlite").exists()
    assert _table_sweep(tmp_path, out).complete  # the lock is released with its holder


def test_sweep_cli_into_a_directory_in_use_exits_2(tmp_path, capsys):
    cat, _ = write_files(tmp_path)
    out = tmp_path / "sweep"
    with DirectoryLock(out):
        code = main(["sweep", "--catalog", str(cat), "--policy", "expert", "--rollouts", "1",
                     "--out", str(out), "--no-progress"])
    assert code == 2
    err = capsys.readouterr().err
    assert f"another robomd sweep or diagnose is running in {out}" in err
    assert "Traceback" not in err


def test_a_campaign_and_a_sweep_share_the_lock(tmp_path):
    cfg = load_campaign(write_campaign(tmp_path, budget=4))
    with DirectoryLock(cfg.output), pytest.raises(CampaignError, match="is running in"):
        run_campaign(cfg, progress=False)


class _BadPolicyWorld:
    """A world factory whose policy cannot be loaded (as a missing TorchScript file)."""

    def __call__(self):
        raise PolicyError("TorchScript policy file /nowhere/p.pt does not exist")


def test_a_worker_that_cannot_load_the_policy_raises_the_policy_error():
    job = RolloutJob("k/0", (), 0, 5)
    with LocalPool(_BadPolicyWorld(), 2) as pool, pytest.raises(PolicyError) as info:
        list(pool.map_unordered([job, dataclasses.replace(job, key="k/1")]))
    assert "could not build its world: TorchScript policy file /nowhere/p.pt" in str(info.value)
    assert "Traceback" not in str(info.value)


def test_sweep_cli_with_a_missing_policy_file_exits_2(tmp_path, capsys):
    pytest.importorskip("robosuite")
    out = tmp_path / "sweep"
    code = main(["sweep", "--task", "lift", "--policy", f"torchscript:{tmp_path}/none.pt",
                 "--rollouts", "1", "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"TorchScript policy file {tmp_path}/none.pt does not exist" in err
    assert "Traceback" not in err


# ----------------------------------------------------------------------------- 6: report


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("finished")
    return run_campaign(load_campaign(write_campaign(tmp, budget=10)), progress=False).out_dir


def _copy(src: Path, dst: Path) -> Path:
    dst.mkdir()
    for name in (RESULT_FILE, STORE_FILE):
        (dst / name).write_bytes((src / name).read_bytes())
    return dst


@pytest.mark.parametrize("damage,match", [
    (lambda p: p.write_bytes(np.random.default_rng(0).bytes(8192)), "file is not a database"),
    (lambda p: p.write_bytes(p.read_bytes()[:len(p.read_bytes()) // 2]),
     "malformed|damaged|not a database"),
    (lambda p: p.unlink(), "does not exist"),
    (lambda p: p.write_bytes(b""), "not a rollout store"),
])
def test_report_refuses_a_damaged_or_missing_store(finished, tmp_path, capsys, damage, match):
    camp = _copy(finished, tmp_path / "c")
    damage(camp / STORE_FILE)
    with pytest.raises(ReportError, match=match) as info:
        load_result(camp)
    assert str(camp / STORE_FILE) in str(info.value)
    assert not (camp / STORE_FILE).exists() or (camp / STORE_FILE).stat().st_size < 1 << 20
    gt = write_files(tmp_path)[1]
    assert main(["report", str(camp), "--ground-truth", str(gt)]) == 2
    err = capsys.readouterr().err
    assert str(camp / STORE_FILE) in err and "Traceback" not in err
    if match == "does not exist":
        assert not (camp / STORE_FILE).exists(), "a deleted store must not be re-created"


@pytest.mark.parametrize("damage,match", [
    (lambda t: t[:len(t) // 2], "is not valid JSON"),
    (lambda t: json.dumps({k: v for k, v in json.loads(t).items() if k != "p_fail"}),
     "key 'p_fail' is missing"),
    (lambda t: json.dumps({**json.loads(t), "diagnosis": {"modes": []}}),
     "diagnosis.modes|diagnosis.entropy is missing"),
])
def test_report_refuses_a_damaged_result_naming_the_file(finished, tmp_path, damage, match):
    camp = _copy(finished, tmp_path / "c")
    path = camp / RESULT_FILE
    path.write_text(damage(path.read_text()))
    with pytest.raises(ReportError, match=match) as info:
        load_result(camp)
    assert str(path) in str(info.value)


def test_report_of_an_intact_campaign_still_works(finished, tmp_path):
    gt = write_files(tmp_path)[1]
    assert main(["report", str(finished), "--ground-truth", str(gt), "--out",
                 str(tmp_path / "r")]) == 0


def test_a_store_opened_for_reading_is_never_created(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        RolloutStore(tmp_path / "none" / STORE_FILE, create=False)
    assert not (tmp_path / "none").exists()


# ----------------------------------------------------------------------------- 7: validation


@pytest.mark.parametrize("change,match", [
    ({"rewards": {"failure": math.nan}}, "campaign.rewards.failure: must be a finite number"),
    ({"rewards": {"success_per_step": math.inf}}, "campaign.rewards.success_per_step: must be a"),
    ({"agent": {"type": "ppo", "learning_rate": math.nan}}, "campaign.agent.learning_rate: must"),
    ({"agent": {"type": "ppo", "learning_rate": math.inf}}, "campaign.agent.learning_rate: must"),
    ({"agent": {"type": "ppo", "gamma": -math.inf}}, "campaign.agent.gamma: must be a finite"),
    ({"agent": {"type": "ppo", "learning_rate": 5.0}}, "campaign.agent.learning_rate: must be <="),
    ({"agent": {"type": "ppo", "n_steps": 10**9}}, "campaign.agent.n_steps: must be <="),
    ({"workers": 65}, "campaign.workers: must be <= 64"),
    ({"workers": 10**12}, "campaign.workers: must be <= 64"),
    ({"budget": math.inf}, "campaign.budget: must be a finite number"),
    ({"budget": 10**9}, "campaign.budget: must be <="),
    ({"seed": 2**40}, "campaign.seed: must be <="),
    ({"max_retries": 10**6}, "campaign.max_retries: must be <= 100"),
    ({"world": {"type": "table", "failure_rates": "failure_rates.json", "horizon": 10**9}},
     "campaign.world.horizon: 1000000000 is out of range"),
    ({"world": {"type": "table", "failure_rates": "failure_rates.json",
                "rollout_seconds": math.nan}}, "campaign.world.rollout_seconds: must be a finite"),
    ({"task": "lift"}, "campaign.task: the campaign is for task 'lift' but its catalog .* is for "
                       "task 'toy'"),
])
def test_non_finite_and_absurd_values_are_refused(tmp_path, change, match):
    data = yaml.safe_load(write_campaign(tmp_path).read_text())
    data.update(change)
    with pytest.raises(ConfigError, match=match):
        parse_campaign(data, "test.yaml", tmp_path)


@pytest.mark.parametrize("value", [[math.inf, 0.02, 0.02], [1e6, 1e6, 1e6], [0.02, math.nan, 0.02],
                                   [0.0, 0.02, 0.02], [1.5, 0.02, 0.02]])
def test_sizes_outside_a_physical_range_are_refused(value):
    entry = {"name": "big", "text": "Resize cube", "kind": "size", "target": "cube",
             "value": value}
    with pytest.raises(CatalogError, match=r"perturbations\[0\]\.value: a size is three positive "
                                           r"half-sizes .* each at most 1\.0"):
        parse_catalog({"task": "lift", "perturbations": [entry]}, "x.yaml")


def test_sizes_inside_the_range_are_accepted():
    entry = {"name": "ok", "text": "Resize table", "kind": "size", "target": "table",
             "value": [1.0, 0.8, 0.025]}
    assert parse_catalog({"task": "lift", "perturbations": [entry]})["ok"].value == (
        1.0, 0.8, 0.025)


def test_binary_files_are_refused_naming_the_file(tmp_path, capsys):
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"task: lift\n\xff\xfe\x00\x81 binary")
    with pytest.raises(ConfigError, match=f"{binary}: not a text \\(UTF-8\\) file"):
        load_campaign(binary)
    with pytest.raises(CatalogError, match=f"{binary}: not a text \\(UTF-8\\) file"):
        load_catalog(binary)
    assert main(["diagnose", "--config", str(binary), "--no-progress"]) == 2
    assert f"{binary}: not a text" in capsys.readouterr().err


# ----------------------------------------------------------------------------- 8: resume


def test_a_changed_catalog_entry_under_the_same_name_does_not_resume(tmp_path):
    path = write_campaign(tmp_path, budget=4)
    run_campaign(load_campaign(path), progress=False)
    cat = tmp_path / "catalog.yaml"
    data = yaml.safe_load(cat.read_text())
    data["perturbations"][0]["value"] = [0.9, 0.9, 0.9, 1.0]  # same name 'a', other colour
    cat.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="campaign.catalog: the catalog's contents differ"):
        run_campaign(load_campaign(path), progress=False)


def test_a_bad_campaign_leaves_no_store_behind(tmp_path):
    path = write_campaign(tmp_path, budget=4)
    cfg = load_campaign(path)
    world = dataclasses.replace(cfg.world, type="nowhere")
    with pytest.raises(ConfigError, match="campaign.world.type: unknown 'nowhere'"):
        run_campaign(dataclasses.replace(cfg, world=world), progress=False)
    cat = tmp_path / "catalog.yaml"
    cat.write_text(cat.read_text().replace("task: toy", "task: other"))  # changed since
    with pytest.raises(ConfigError, match="campaign.task: the campaign is for task 'toy'"):
        run_campaign(cfg, progress=False)
    cat.write_text("task: toy\nperturbations: []\n")
    with pytest.raises(ConfigError, match="campaign.catalog: .*'perturbations' must be"):
        run_campaign(cfg, progress=False)
    assert not cfg.output.exists()


def test_a_reduced_budget_reports_only_the_rollouts_within_it(tmp_path):
    path = write_campaign(tmp_path, budget=12)
    cfg = load_campaign(path)
    full = run_campaign(cfg, progress=False)
    assert full.diagnosis.rollouts_completed + full.diagnosis.rollouts_aborted == 12
    small = run_campaign(dataclasses.replace(cfg, budget=5), progress=False)
    assert small.new_rollouts == 0
    d = small.diagnosis
    assert d.rollouts_completed + d.rollouts_aborted == 5
    assert sum(m.trials + m.excluded for m in d.modes) == 5
    stored = json.loads((cfg.output / RESULT_FILE).read_text())
    assert stored["budget"] == 5
    assert stored["diagnosis"]["rollouts_completed"] + stored["diagnosis"]["rollouts_aborted"] == 5


# ----------------------------------------------------------------------------- 9: bad actions


class NanPolicyWorld(TableWorld):
    """A table world whose policy returns a non-finite action under perturbation ``a``."""

    def execute(self, max_steps, seed, on_step=None, should_stop=None):
        if "a" in self._applied:
            as_action([0.0, math.nan, 0, 0, 0, 0, 0], "policy NanPolicy")
        return super().execute(max_steps, seed, on_step, should_stop)


def _nan_world() -> NanPolicyWorld:
    from diagnosis_fixtures import NOMINAL_RATE, catalog

    return NanPolicyWorld(catalog(), RATES, nominal_rate=NOMINAL_RATE)


def test_a_non_finite_action_aborts_only_its_rollout():
    world = _nan_world()
    res = run_job(world, RolloutJob("x/0", ("a",), 3, 40))
    assert res.result.status == RolloutStatus.ABORTED and res.outcome is None
    assert "non-finite action" in res.result.reason
    assert res.to_record(".").failed is False
    ok = run_job(world, RolloutJob("x/1", ("b",), 3, 40))
    assert ok.result.status == RolloutStatus.COMPLETED


def test_a_campaign_survives_non_finite_actions(tmp_path):
    cfg = load_campaign(write_campaign(tmp_path, budget=20, max_retries=0))
    result = run_campaign(cfg, progress=False, world_factory=lambda i: _nan_world())
    a = next(m for m in result.diagnosis.modes if m.name == "a")
    assert a.trials == 0 and a.failures == 0 and a.excluded > 0
    with RolloutStore(cfg.output / STORE_FILE) as store:
        aborted = [r for r in store.records() if r.status == "aborted"]
    assert aborted and all("non-finite action" in r.reason for r in aborted)
    assert sum(m.trials for m in result.diagnosis.modes if m.name in NAMES[1:]) > 0


@pytest.mark.parametrize("argv,match", [
    (["sweep", "--task", "lift", "--policy", "expert", "--workers", "65"], "--workers: at most 64"),
    (["sweep", "--task", "lift", "--policy", "expert", "--rollouts", "10000000"],
     "--rollouts: at most"),
    (["diagnose", "--config", "CONFIG", "--budget", "10000000"], "--budget: use 1..1000000"),
])
def test_cli_counts_are_bounded(tmp_path, capsys, argv, match):
    argv = [str(write_campaign(tmp_path)) if a == "CONFIG" else a for a in argv]
    assert main([*argv, "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
