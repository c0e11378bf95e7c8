"""Deciding and generalising agents, ground-truth loading and the replay bench."""

from __future__ import annotations

import json

import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

from robomd_diagnoser.agents import UniformAgent, make_agent
from robomd_diagnoser.benchmarks.diagnose import (
    BenchSettings,
    MemberOracleEnv,
    interaction_members,
    run_bench,
)
from robomd_diagnoser.config import AGENT_PARAMS, AgentConfig
from robomd_diagnoser.confseq import FAILURE_MODE, decide
from robomd_diagnoser.factor_analysis import interactions, level_effects
from robomd_diagnoser.paths import find_config
from robomd_diagnoser.search_agents import FactorAgent, GoodArmAgent
from robomd_diagnoser.space_truth import load_space_truth, synthetic_truth


def oracle(truth, seed=0):
    return DummyVecEnv([lambda: MemberOracleEnv([m.name for m in truth.members], truth.rates,
                                                seed)])


def test_loader_reads_the_space_shape_and_the_sweep_shape(tmp_path):
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"space": "s", "command": "c", "members": [
        {"name": "a", "levels": [["f", "a"]], "failures": 1, "trials": 4},
        {"name": "a+b", "levels": [["f", "a"], ["g", "b"]], "failures": 4, "trials": 4}]}))
    truth = load_space_truth(path)
    assert truth.rates.tolist() == [0.25, 1.0] and truth.members[1].levels[1] == ("g", "b")
    sweep = load_space_truth(find_config("ground_truth/lift_bc.json"))
    assert len(sweep.members) == 21
    assert len({m.levels[0][0] for m in sweep.members}) == 21, "each member its own family"
    path.write_text(json.dumps({"members": [{"name": "a", "levels": [["f"]], "failures": 1,
                                             "trials": 4}]}))
    with pytest.raises(ValueError, match=r"members\[0\].levels"):
        load_space_truth(path)


def test_synthetic_truth_has_the_structure_it_claims():
    truth = synthetic_truth(4, 4, interactions=3, seed=1)
    assert truth.source == "<synthetic>" and truth.space.startswith("synthetic")
    assert len(truth.members) == 16 + 6 * 16
    assert len(interaction_members(truth, 0.5)) >= 2  # 3 planted; a draw may blur one


def test_sweep_shuffles_once_and_visits_every_member_per_pass():
    agent = UniformAgent(7, seed=3, shuffle=True)
    order = [agent.choose(k) for k in range(14)]
    assert sorted(order[:7]) == list(range(7)) and order[:7] == order[7:]
    assert order[:7] != list(range(7))


def test_good_arm_confirms_failures_and_stops_sampling_decided_members():
    truth = synthetic_truth(3, 3, interactions=0, seed=0)
    n = len(truth.members)
    agent = GoodArmAgent(n, seed=0)
    agent.run(oracle(truth), 40 * n, lambda done, infos: not (agent.decisions() != 0).all())
    codes = agent.decisions()
    fm = truth.rates >= 0.5
    assert (codes[fm & (truth.rates > 0.9)] == 1).all()
    assert not (codes[~fm] == 1).any()
    assert agent.trials.sum() < 40 * n


def test_factor_agent_predicts_untried_members_from_their_levels():
    truth = synthetic_truth(5, 5, interactions=0, mild_families=0, seed=2)
    n = len(truth.members)
    fm = truth.rates >= 0.5
    agent = make_agent(AgentConfig("factor", AGENT_PARAMS["factor"]), n, 0,
                       members=truth.levels)
    assert isinstance(agent, FactorAgent)
    agent.run(oracle(truth), n // 2, lambda done, infos: True)
    preds = [p for p in agent.predictions() if p.decision == FAILURE_MODE]
    assert sum(p.trials == 0 for p in preds) >= 5, "some predicted members were never tried"
    assert all(len(p.evidence) == len(truth.members[p.index].levels) for p in preds)
    reported = agent.decisions() == 1
    reported[[p.index for p in preds]] = True
    assert (reported & fm).sum() / fm.sum() >= 0.9, "half a sweep's pass finds 90%"
    assert (reported & fm).sum() / reported.sum() >= 0.95


def test_factor_analysis_finds_the_bad_level_and_an_interaction():
    levels = [(("f", "a"),), (("f", "b"),), (("g", "c"),), (("g", "d"),),
              (("f", "a"), ("g", "c")), (("f", "b"), ("g", "d")), (("f", "a"), ("g", "d")),
              (("f", "b"), ("g", "c"))]
    names = ["a", "b", "c", "d", "a+c", "b+d", "a+d", "b+c"]
    failures = np.array([20, 0, 0, 0, 20, 20, 20, 0])
    trials = np.full(8, 20)
    effects = level_effects(levels, failures, trials)
    assert effects[0]["level"] == "a" and effects[0]["raises_failure"]
    found = interactions(names, levels, failures, trials)
    assert [r["name"] for r in found] == ["b+d"]


def test_bench_replays_a_space_and_reports_the_contract_keys():
    truth = synthetic_truth(4, 4, interactions=2, mild_families=1, seed=0)
    out = run_bench(truth, BenchSettings(agents=("uniform", "good_arm", "factor"), seeds=2,
                                         max_passes=40))
    for key in ("space_size", "sweep_rollouts_to_recall_0.9", "best_agent",
                "best_rollouts_to_recall_0.9", "ppo_rollouts_to_recall_0.9",
                "interval_coverage_min"):
        assert key in out
    assert out["space_size"] == len(truth.members) and out["synthetic"]
    assert out["interval_coverage_min"] >= 0.95
    sweep = out["agents"]["uniform"]
    assert sweep["budgets"][str(len(truth.members))]["cases"] == 2 * len(truth.members)
    assert out["sweep_rollouts_to_recall_0.9"] is not None
    assert out["best_rollouts_to_recall_0.9"] <= out["sweep_rollouts_to_recall_0.9"]


def test_bench_command_reads_a_ground_truth_file_and_writes_its_json(tmp_path, capsys):
    from robomd_diagnoser.cli.main import main

    members = [{"name": f"m{i}", "levels": [["f", f"m{i}"]], "failures": 5 * (i < 2),
                "trials": 5} for i in range(4)]
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"space": "tiny", "command": "made here", "members": members}))
    out = tmp_path / "bench.json"
    assert main(["bench", "diagnose", "--ground-truth", str(path), "--seeds", "1",
                 "--agents", "uniform,good_arm", "--fractions", "1,10", "--json",
                 "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    assert printed["space"] == "tiny" and printed["failure_modes"] == 2
    assert printed["machine"]["cores"] >= 1
    assert main(["bench", "diagnose", "--ground-truth", str(tmp_path / "none.json")]) == 2
    assert "none.json" in capsys.readouterr().err


def test_masked_ppo_masks_the_decided_members():
    from robomd_diagnoser.search_agents import DecidedMask

    truth = synthetic_truth(2, 2, interactions=0, mild_families=0, seed=0)
    n = len(truth.members)
    params = {**AGENT_PARAMS["ppo"], "mask_decided": True, "n_steps": 16, "batch_size": 16}
    agent = make_agent(AgentConfig("ppo", params), n, 0)
    chosen = []

    def hook(done, infos):
        chosen.extend(i["member"] for i in infos)
        return True

    agent.run(oracle(truth), 96, hook)
    masker = agent.model.get_env()  # SB3 wraps it (image transpose); masks pass through
    mask = masker.env_method("action_masks")[0]
    while not isinstance(masker, DecidedMask):
        masker = masker.venv
    assert masker.trials.sum() == len(chosen) == 96
    open_ = decide(masker.failures, masker.trials, 0.5, 0.95) == 0
    assert (mask == open_).all() if open_.any() else mask.all()
    assert not open_.all(), "96 rollouts over 4 members decide some"
