"""Diagnosis numbers: entropy, failure modes, FSI, observed rates, ranking accuracy."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from diagnosis_fixtures import catalog, write_files
from scipy.stats import kendalltau

from robomd_diagnoser.analysis import (
    diagnose,
    entropy,
    fsi,
    kendall_tau,
    load_ground_truth,
    num_failure_modes,
    pairwise_accuracy,
)
from robomd_diagnoser.store import RolloutRecord


@pytest.mark.parametrize("p,expected", [([0.2] * 5, math.log(5)), ([1, 0, 0, 0, 0], 0.0),
                                        ([0.5, 0.5, 0, 0, 0], math.log(2))])
def test_entropy_in_nats(p, expected):
    assert entropy(p) == pytest.approx(expected)


@pytest.mark.parametrize("p,expected", [([1, 0, 0], 1.0), ([0.6, 0.4, 0], (0.36 + 0.16) / 0.6),
                                        ([0.5, 0.25, 0.25], (0.25 + 0.0625 * 2) / 0.5)])
def test_fsi_weights_the_top_mode_one(p, expected):
    assert fsi(p) == pytest.approx(expected)


@pytest.mark.parametrize("p,expected", [([0.2] * 5, 0), ([0.3, 0.3, 0.2, 0.1, 0.1], 2),
                                        ([0.96, 0.01, 0.01, 0.01, 0.01], 1)])
def test_failure_modes_are_above_uniform(p, expected):
    assert num_failure_modes(p) == expected


TRUTH = {"a": 0.9, "b": 0.6, "c": 0.3, "d": 0.1, "e": 0.05}


@pytest.mark.parametrize("scores,expected", [
    (TRUTH, 1.0),
    ({k: -v for k, v in TRUTH.items()}, 0.0),
    ({k: 1.0 for k in TRUTH}, 0.5),
    ({"a": 5, "b": 4, "c": 3, "d": 1, "e": 2}, 1.0),  # d/e differ by < 0.2: not a pair
])
def test_pairwise_accuracy(scores, expected):
    assert pairwise_accuracy(scores, TRUTH) == pytest.approx(expected)


def test_pairwise_accuracy_without_pairs_is_none():
    assert pairwise_accuracy({"a": 1, "b": 0}, {"a": 0.5, "b": 0.45}) is None


def test_kendall_tau_matches_scipy():
    rng = np.random.default_rng(0)
    names = [f"p{i}" for i in range(12)]
    x = np.round(rng.random(12), 1)
    y = np.round(rng.random(12), 1)
    ours = kendall_tau(dict(zip(names, x, strict=True)), dict(zip(names, y, strict=True)))
    assert ours == pytest.approx(kendalltau(x, y).statistic)


def record(key, perts, success, status="completed", video=None):
    return RolloutRecord(key, tuple(perts), 0, status, success if status == "completed" else None,
                         10, 0.1, video=video)


def test_diagnose_counts_single_perturbations_and_reports_sets_apart():
    records = [record("1", ["a"], False, video="videos/1.mp4"), record("2", ["a"], False),
               record("3", ["a"], True), record("4", ["b"], True),
               record("5", ["b", "a"], False), record("6", ["c"], None, status="aborted")]
    p = [0.5, 0.2, 0.1, 0.1, 0.1]
    d = diagnose(catalog(), p, records)
    a, b, c = (next(m for m in d.modes if m.name == n) for n in "abc")
    assert d.modes[0].name == "a" and a.weight == 1.0 and b.weight == pytest.approx(0.4)
    assert (a.trials, a.failures, a.rate) == (3, 2, pytest.approx(2 / 3))
    assert a.videos == ("videos/1.mp4",)
    assert (b.trials, b.failures) == (1, 0), "the set b+a does not count for b or a"
    assert (c.trials, c.excluded, c.rate) == (0, 1, None)
    assert 0 < a.lo < a.rate < a.hi < 1
    assert d.combinations[0]["perturbations"] == ["b", "a"]
    assert (d.rollouts_completed, d.rollouts_aborted) == (5, 1)
    assert d.num_failure_modes == 1 and d.fsi == pytest.approx(fsi(p))
    assert d.accuracy is None
    assert json.dumps(d.to_dict())


def test_diagnose_confirms_modes_from_observed_rates():
    records = [record(str(i), ["a"], False) for i in range(8)]
    records += [record(f"b{i}", ["b"], i % 2 == 0) for i in range(2)]
    d = diagnose(catalog(), [0.2] * 5, records)
    assert d.num_confirmed_failure_modes == 1  # a: 8/8; b: 1/2 has a wide interval


def test_diagnose_rejects_a_bad_distribution():
    with pytest.raises(ValueError, match="5 probabilities summing to 1"):
        diagnose(catalog(), [0.5, 0.5, 0.5, 0, 0], [])


def test_ground_truth_scores_the_ranking(tmp_path):
    _, path = write_files(tmp_path)
    truth = load_ground_truth(path)
    assert truth.rates == TRUTH and truth.nominal == pytest.approx(0.05)
    d = diagnose(catalog(), [0.4, 0.3, 0.15, 0.1, 0.05], [], truth)
    assert d.accuracy["pairwise_accuracy"] == 1.0 and d.accuracy["kendall_tau"] == 1.0
    assert d.accuracy["pairs"] == 9  # all but d/e


@pytest.mark.parametrize("content,match", [
    ({"perturbations": []}, "perturbations"),
    ({"perturbations": [{"name": "a", "failure_rate": None}]}, "perturbations\\[0\\]"),
])
def test_bad_ground_truth_is_named(tmp_path, content, match):
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=match):
        load_ground_truth(path)


def test_missing_ground_truth_says_how_to_make_one(tmp_path):
    with pytest.raises(ValueError, match="robomd sweep"):
        load_ground_truth(tmp_path / "nope.json")


def test_reported_failure_modes_are_checked_against_the_ground_truth():
    from robomd_diagnoser.analysis import GroundTruth

    # a fails 20/20 (decided), b fails 1/1 but a prediction reports it, c decided by 20 successes,
    # d is predicted a failure mode without a rollout; the truth has a and c failing, not b, d.
    records = [record(f"a{i}", ["a"], False) for i in range(20)]
    records += [record("b0", ["b"], False)] + [record(f"c{i}", ["c"], True) for i in range(20)]
    predictions = [
        type("P", (), {"index": i, "to_dict": lambda self, i=i: {
            "index": i, "decision": "failure mode", "probability": 0.99, "evidence": []}})()
        for i in (1, 3)]
    truth = GroundTruth({"a": 1.0, "b": 0.2, "c": 0.6, "d": 0.0}, None, "gt.json")
    d = diagnose(catalog(), [0.2] * 5, records, truth, predictions=predictions)
    fm = d.accuracy["failure_modes"]
    assert [r["name"] for r in fm["confirmed"]] == ["a"]
    assert sorted((r["name"], r["predicted"]) for r in fm["refuted"]) == [("b", True),
                                                                        ("d", True)]
    assert fm["reported"] == 3 and fm["precision"] == pytest.approx(1 / 3)
    assert fm["truth_failure_modes"] == 2 and fm["recall"] == pytest.approx(0.5)
    assert fm["outside"] == 0
