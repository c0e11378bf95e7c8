"""Anytime-valid confidence sequences and the failure-mode decision rule."""

from __future__ import annotations

import numpy as np
import pytest

from robomd_diagnoser.confseq import (
    FAILURE_MODE,
    NOT_FAILURE_MODE,
    UNDECIDED,
    confidence_sequence,
    decide,
    ebh,
    estimates,
)
from robomd_diagnoser.stats import wilson_interval


def test_edge_cases():
    assert confidence_sequence(0, 0) == (0.0, 1.0)
    lo, hi = confidence_sequence(0, 20)
    assert lo == 0.0 and 0 < hi < 0.3
    lo, hi = confidence_sequence(20, 20)
    assert hi == 1.0 and 0.7 < lo < 1
    with pytest.raises(ValueError, match="failures <= trials"):
        confidence_sequence(3, 2)
    with pytest.raises(ValueError, match="alpha"):
        confidence_sequence(1, 2, 1.5)


def test_interval_contains_the_estimate_and_is_wider_than_wilson():
    for k, n in [(1, 1), (3, 10), (50, 100), (99, 100)]:
        lo, hi = confidence_sequence(k, n)
        wlo, whi = wilson_interval(k, n)
        assert lo <= k / n <= hi
        assert lo <= wlo and hi >= whi, "valid at all times costs width"


def test_width_shrinks_with_trials_and_with_lower_confidence():
    widths = [np.subtract(*confidence_sequence(n // 2, n)[::-1]) for n in (10, 40, 160, 640)]
    assert all(a > b for a, b in zip(widths, widths[1:], strict=False))
    lo99, hi99 = confidence_sequence(30, 100, 0.01)
    lo90, hi90 = confidence_sequence(30, 100, 0.10)
    assert lo99 < lo90 and hi99 > hi90


def test_coverage_under_adaptive_sampling_and_optional_stopping():
    """An adversarial sampler: always sample the arm whose interval currently looks most like a
    failure mode, and check every interval after every rollout (any stopping time). Each arm's
    sequence must cover its rate at all times in >= 95% of (arm, run) cases (Ville; 0.065 allows
    Monte Carlo noise); a fixed-n Wilson interval monitored the same way does not."""
    rng = np.random.default_rng(0)
    rates = np.array([0.45, 0.5, 0.55, 0.3])
    runs, horizon = 150, 150
    cs_miss = np.zeros(4)
    wilson_miss = np.zeros(4)
    for _ in range(runs):
        k = np.zeros(4, int)
        n = np.zeros(4, int)
        cs_ever = np.zeros(4, bool)
        wilson_ever = np.zeros(4, bool)
        for _t in range(horizon):
            upper = [confidence_sequence(int(k[i]), int(n[i]))[1] for i in range(4)]
            a = int(np.argmax(upper))
            n[a] += 1
            k[a] += rng.random() < rates[a]
            lo, hi = confidence_sequence(int(k[a]), int(n[a]))
            cs_ever[a] |= not lo <= rates[a] <= hi
            wlo, whi = wilson_interval(int(k[a]), int(n[a]))
            wilson_ever[a] |= not wlo <= rates[a] <= whi
        cs_miss += cs_ever
        wilson_miss += wilson_ever
    assert cs_miss.sum() / (4 * runs) <= 0.065
    assert wilson_miss.sum() / (4 * runs) > 0.10, "fixed-n intervals fail under monitoring"


def test_ebh_rejects_the_largest_e_values_at_its_level():
    log_e = np.log(np.array([1000.0, 50.0, 1.0, 0.5]))
    # m = 4, alpha 0.05: rank 1 needs 80, rank 2 needs 40
    assert ebh(log_e, 0.05).tolist() == [True, True, False, False]
    assert ebh(np.log([30.0, 30.0, 1.0, 1.0]), 0.05).tolist() == [False] * 4
    assert ebh(np.zeros(0), 0.05).size == 0


def test_decisions_follow_the_bounds_and_multiplicity():
    failures = np.array([30, 0, 3, 0])
    trials = np.array([30, 30, 6, 0])
    codes = decide(failures, trials, 0.5, 0.95)
    assert codes.tolist() == [1, -1, 0, 0]
    est = estimates(failures, trials, 0.5, 0.95)
    assert [e.decision for e in est] == [FAILURE_MODE, NOT_FAILURE_MODE, UNDECIDED, UNDECIDED]
    assert est[0].lo >= 0.5 and est[1].hi < 0.5
    assert est[3].rate is None and (est[3].lo, est[3].hi) == (0.0, 1.0)
    # 8/8 alone decides at the per-member level, not among 1000 members (e-BH over all of them)
    assert decide(np.array([8]), np.array([8]), 0.5, 0.95).tolist() == [1]
    many_k = np.zeros(1000, int)
    many_k[0] = 8
    many_n = np.zeros(1000, int)
    many_n[0] = 8
    assert decide(many_k, many_n, 0.5, 0.95)[0] == 0
