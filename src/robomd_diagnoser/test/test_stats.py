"""Tests of binomial intervals and failure-rate tables."""

from __future__ import annotations

import pytest

from robomd_diagnoser.stats import (
    binomial_interval,
    failure_rates,
    jeffreys_interval,
    wilson_interval,
)
from robomd_diagnoser.store import RolloutRecord


# Reference values: Wilson from the closed form as tabulated by Newcombe (1998), Table I
# (e.g. 81/263 -> 0.2553-0.3662; 0/10 -> 0-0.2775), Jeffreys from Brown, Cai & DasGupta (2001).
@pytest.mark.parametrize(("k", "n", "lo", "hi"), [
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0, 0.1611),
    (1, 29, 0.0061, 0.1718),
    (0, 10, 0.0, 0.2775),
    (10, 10, 0.7225, 1.0),
    (5, 10, 0.2366, 0.7634),
])
def test_wilson_matches_published_values(k, n, lo, hi):
    got = wilson_interval(k, n)
    assert got == pytest.approx((lo, hi), abs=5e-5)


@pytest.mark.parametrize(("k", "n", "lo", "hi"), [
    (0, 10, 0.0, 0.2172),
    (5, 10, 0.2235, 0.7765),
    (10, 10, 0.7828, 1.0),
])
def test_jeffreys_values_and_edge_conventions(k, n, lo, hi):
    pytest.importorskip("scipy")
    assert jeffreys_interval(k, n) == pytest.approx((lo, hi), abs=5e-5)


@pytest.mark.parametrize("method", ["wilson", "jeffreys"])
@pytest.mark.parametrize("n", [1, 7, 50])
def test_edges_are_exact_and_intervals_contain_the_estimate(method, n):
    if method == "jeffreys":
        pytest.importorskip("scipy")
    assert binomial_interval(0, n, method=method)[0] == 0.0
    assert binomial_interval(n, n, method=method)[1] == 1.0
    for k in range(n + 1):
        lo, hi = binomial_interval(k, n, method=method)
        assert 0.0 <= lo <= k / n <= hi <= 1.0


def test_higher_confidence_gives_a_wider_interval():
    lo90, hi90 = wilson_interval(3, 20, 0.90)
    lo99, hi99 = wilson_interval(3, 20, 0.99)
    assert lo99 < lo90 and hi99 > hi90


def test_no_trials_gives_the_whole_unit_interval():
    assert wilson_interval(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize(("args", "match"), [
    ((3, 2), "failures <= trials"),
    ((-1, 2), "failures <= trials"),
    ((1, 2, 1.0), "confidence"),
])
def test_bad_arguments_are_named(args, match):
    with pytest.raises(ValueError, match=match):
        wilson_interval(*args)


def test_unknown_method_is_named():
    with pytest.raises(ValueError, match="'exact'"):
        binomial_interval(1, 2, method="exact")


def _r(key, perts, status="completed", success=True):
    return RolloutRecord(key, perts, 0, status, success, 10, 1.0)


def test_failure_table_groups_by_set_and_excludes_aborted():
    records = [
        _r("n/0", ()), _r("n/1", (), success=False), _r("n/2", ()),
        _r("r/0", ("cube_red",), success=False), _r("r/1", ("cube_red",), success=False),
        _r("r/2", ("cube_red",), "aborted", None), _r("r/3", ("cube_red",), "unavailable", None),
        _r("a/0", ("table_red", "cube_red"), "cancelled", None),
    ]
    table = failure_rates(records)
    assert list(table) == [(), ("cube_red",), ("table_red", "cube_red")]
    nominal, red, both = table.values()
    assert (nominal.n, nominal.failures, nominal.excluded) == (3, 1, 0)
    assert nominal.rate == pytest.approx(1 / 3)
    assert (red.n, red.failures, red.excluded, red.rate) == (2, 2, 2, 1.0)
    assert (red.lo, red.hi) == pytest.approx(wilson_interval(2, 2))
    assert (both.n, both.excluded, both.rate, both.lo, both.hi) == (0, 1, None, 0.0, 1.0)
    assert red.to_dict()["perturbations"] == ["cube_red"]
