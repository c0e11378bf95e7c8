"""Statistics edge cases and the benchmarks' run paths at tiny sizes: the pair filter and its
float tolerance, Kendall tau-b with joint ties, accuracy over the scored names only, fine-tuning
figures without unmeasured perturbations, the strategy gain's interval and test, evaluation seeds
apart from training seeds, and the fold loop and agent comparison of ``robomd bench``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from continuous_fixtures import PERTS, TINY, make_sweep
from scipy.stats import chi2_contingency, kendalltau

from robomd_diagnoser.analysis import (
    GroundTruth,
    accuracy_against,
    kendall_tau,
    pairwise_accuracy,
    ranked_pairs,
)
from robomd_diagnoser.learning.data import save_demo
from robomd_diagnoser.learning.finetune import (
    BEFORE,
    FinetuneError,
    check_seed_separation,
    compare,
    summarise,
)
from robomd_diagnoser.stats import (
    FailureRate,
    difference_interval,
    two_proportion_p_value,
    wilson_interval,
)
from robomd_diagnoser.sweep import SweepRow

# ------------------------------------------------------------------------- pairs and rankings


def test_the_pair_filter_tolerates_float_residue_only():
    assert 0.3 - 0.1 < 0.2  # the residue the tolerance is for
    assert ranked_pairs({"a": 0.3, "b": 0.1}) == [("a", "b")]
    assert ranked_pairs({"a": 0.3, "b": 0.1001}) == []
    assert ranked_pairs({"a": 0.3, "b": 0.1, "c": 0.9}, ["c", "a", "zz"]) == [("c", "a")]
    assert pairwise_accuracy({"a": 1, "b": 0}, {"a": 0.3, "b": 0.1}) == 1.0


def test_kendall_tau_b_skips_joint_ties():
    # pairs (p0,p1) and (p2,p3) tie in both; (p4,p5) ties in the scores only
    x = [1, 1, 2, 2, 3, 3, 4]
    y = [5, 5, 6, 6, 7, 8, 9]
    names = [f"p{i}" for i in range(len(x))]
    ours = kendall_tau(dict(zip(names, x, strict=True)), dict(zip(names, y, strict=True)))
    assert ours == pytest.approx(kendalltau(x, y).statistic)
    # by hand: 21 pairs, 2 joint ties, 1 tie in x only, 18 concordant, 0 discordant
    assert ours == pytest.approx(18 / np.sqrt((18 + 1) * 18))


def test_accuracy_counts_the_pairs_it_scored():
    truth = GroundTruth({"a": 0.9, "b": 0.6, "c": 0.3, "z": 0.0, "y": 1.0}, 0.05, "gt.json")
    p_fail = {"a": 0.5, "b": 0.3, "c": 0.2}
    acc = accuracy_against(p_fail, p_fail, truth)
    assert acc["pairs"] == 3 == len(ranked_pairs(truth.rates, p_fail))  # a-b, a-c, b-c
    assert acc["unscored"] == ["z", "y"]
    assert acc["pairwise_accuracy"] == 1.0


# ------------------------------------------------------------------------- fine-tuning figures


def _row(name: str, n: int, failures: int) -> SweepRow:
    lo, hi = wilson_interval(failures, n)
    return SweepRow(name, name, FailureRate((name,), n, failures, 0, lo, hi), False)


def test_a_perturbation_without_completed_rollouts_is_not_a_zero_rate():
    rows = [_row("nominal", 4, 0), _row("dark", 4, 4), _row("blue", 4, 2), _row("gone", 0, 0)]
    s = summarise(rows, ["dark"])
    assert s["failure_distribution"] == {"dark": 1.0, "blue": 0.5}
    assert s["unmeasured"] == ["gone"]
    assert s["wasserstein_to_ideal"] == pytest.approx(0.75)  # not 1.5 / 3
    assert summarise([_row("nominal", 4, 0), _row("gone", 0, 0)], [])["wasserstein_to_ideal"] \
        is None


def test_newcombe_interval_matches_the_published_example():
    # Newcombe (1998), Stat. Med. 17:873, example (a): 56/70 - 48/80, method 10: 0.0524, 0.3339
    lo, hi = difference_interval(56, 70, 48, 80)
    assert (round(lo, 4), round(hi, 4)) == (0.0524, 0.3339)
    assert difference_interval(5, 5, 0, 5)[1] == 1.0


def test_two_proportion_test_is_the_chi_square_test():
    for k1, n1, k2, n2 in ((56, 70, 48, 80), (3, 10, 7, 10), (0, 8, 5, 9)):
        table = [[k1, n1 - k1], [k2, n2 - k2]]
        expected = chi2_contingency(table, correction=False).pvalue
        assert two_proportion_p_value(k1, n1, k2, n2) == pytest.approx(expected)
    assert two_proportion_p_value(4, 4, 6, 6) == 1.0


def _summary(successes: int, n: int) -> dict:
    rows = [_row("nominal", n, 0), _row("dark", n, n - successes)]
    return summarise(rows, ["dark"])


def test_the_strategy_gain_comes_with_an_interval_and_a_test():
    out = compare({BEFORE: _summary(2, 20), "targeted": _summary(18, 20),
                   "uniform": _summary(8, 20)})
    assert out["targeted_vs_uniform_gain"] == pytest.approx(0.5)
    lo, hi = out["targeted_vs_uniform_gain_interval"]
    assert (lo, hi) == pytest.approx(difference_interval(18, 20, 8, 20))
    assert 0 < lo < 0.5 < hi < 1
    assert out["targeted_vs_uniform_p_value"] == pytest.approx(
        two_proportion_p_value(18, 20, 8, 20)) and out["targeted_vs_uniform_p_value"] < 0.01
    alone = compare({BEFORE: _summary(2, 20), "targeted": _summary(18, 20)})
    assert alone["targeted_vs_uniform_gain"] is None
    assert alone["targeted_vs_uniform_gain_interval"] is None


def _episode(path, seed: int):
    save_demo(path, {"image": np.zeros((1, 4, 4, 3), np.uint8), "eef_pos": np.zeros((1, 3)),
                     "gripper": np.zeros((1, 1)), "action": np.zeros((1, 7))}, seed=seed)
    return path


def test_evaluation_seeds_stay_apart_from_training_seeds(tmp_path):
    check_seed_separation(range(1000, 1010), {"demos": range(5000, 5030),
                                              "replay": range(0, 30)})
    with pytest.raises(FinetuneError, match=r"evaluation seeds 0\.\.9 overlap the seeds of the "
                                            r"replay \(0, 1, 2, 3, 4, \.\.\.\).*--eval-seed"):
        check_seed_separation(range(0, 10), {"demos": range(5000, 5030), "replay": range(30)})
    files = [_episode(tmp_path / f"e{s}.npz", s) for s in (3, 1004)]
    with pytest.raises(FinetuneError, match=r"seeds of the original demonstrations \(1004\)"):
        check_seed_separation(range(1000, 1010), {"original demonstrations": files})
    check_seed_separation(range(1005, 1010), {"original demonstrations": files})


# ------------------------------------------------------------------------- benchmark run paths


def test_bench_continuous_fold_loop_on_a_tiny_sweep(tmp_path):
    from robomd_diagnoser.benchmarks.continuous import held_out_ranking
    from robomd_diagnoser.continuous.agent import AgentSettings
    from robomd_diagnoser.continuous.train import TrainSettings

    sweep = make_sweep(tmp_path / "sweep")
    rates = {n: v[4] for n, v in PERTS.items()}
    (sweep / "failure_rates.json").write_text(json.dumps({
        "nominal": {"name": "nominal", "failure_rate": 0.0},
        "perturbations": [{"name": n, "failure_rate": r} for n, r in rates.items()]}))
    folds = [["table_red", "cube_red"], ["table_blue", "cube_green"]]
    figures = held_out_ranking(
        sweep, folds, TINY, TrainSettings(epochs=1, batch_size=8),
        AgentSettings(timesteps=64, n_steps=32, batch_size=16, n_epochs=1, hidden=(16,)),
        "nominal", tmp_path / "work", progress=False)
    assert figures["folds"] == 2 and figures["perturbations"] == 4
    assert [f["pairs"] for f in figures["per_fold"]] == [1, 1]
    assert figures["unseen_pairs"] == 2
    # each held-out perturbation's group (kind, target) has its twin among the trained ones
    assert figures["unseen_group_baseline_accuracy"] == 1.0
    for fold in figures["per_fold"]:
        assert fold["pairwise_accuracy"] in (0.0, 0.5, 1.0)
    pooled = sum(f["pairwise_accuracy"] for f in figures["per_fold"]) / 2
    assert figures["unseen_pairwise_accuracy"] == pytest.approx(pooled)
