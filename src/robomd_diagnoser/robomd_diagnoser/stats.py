"""Failure rates with binomial confidence intervals, computed from stored rollouts.

Only completed (judged) rollouts count towards a rate; aborted, cancelled and unavailable ones
are never policy failures and are reported separately as ``excluded``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from robomd_diagnoser.store import RolloutRecord
from robomd_diagnoser.world import RolloutStatus

METHODS = ("wilson", "jeffreys")


def _check(k: int, n: int, confidence: float) -> None:
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= failures <= trials, got failures={k}, trials={n}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), e.g. 0.95; got {confidence}")


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``k / n``.

    :param k: number of events (failures).
    :param n: number of trials; with 0 trials the interval is (0, 1).
    :param confidence: two-sided confidence level.
    """
    _check(k, n, confidence)
    if n == 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    p = k / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1.0 - p) / n + z * z / (4 * n * n))
    # At k = 0 or k = n the exact bound is 0 or 1; clamp away floating-point residue.
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return lo, hi


def difference_interval(k1: int, n1: int, k2: int, n2: int,
                        confidence: float = 0.95) -> tuple[float, float]:
    """Newcombe's hybrid score interval for the difference of two independent proportions
    ``k1/n1 - k2/n2`` (his method 10, built from the two Wilson intervals).

    :param k1: events in sample 1.
    :param n1: trials in sample 1 (>= 1).
    :param k2: events in sample 2.
    :param n2: trials in sample 2 (>= 1).
    :param confidence: two-sided confidence level.
    """
    if n1 < 1 or n2 < 1:
        raise ValueError(f"both samples need trials, got n1={n1}, n2={n2}")
    p1, p2 = k1 / n1, k2 / n2
    l1, u1 = wilson_interval(k1, n1, confidence)
    l2, u2 = wilson_interval(k2, n2, confidence)
    d = p1 - p2
    return (max(-1.0, d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)),
            min(1.0, d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)))


def two_proportion_p_value(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test of ``k1/n1 == k2/n2``.

    :param k1: events in sample 1.
    :param n1: trials in sample 1 (>= 1).
    :param k2: events in sample 2.
    :param n2: trials in sample 2 (>= 1).
    :returns: the p-value (1.0 when both samples are all events or all non-events).
    """
    if n1 < 1 or n2 < 1:
        raise ValueError(f"both samples need trials, got n1={n1}, n2={n2}")
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = (k1 / n1 - k2 / n2) / se
    return 2 * (1 - NormalDist().cdf(abs(z)))


def holm_adjust(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error control under any dependence).

    Rejecting the hypotheses whose adjusted p-value is below ``alpha`` keeps the probability of
    any false rejection in the family at most ``alpha``.

    :param p_values: the family's raw p-values.
    :returns: the adjusted p-values, in the order given.
    """
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def jeffreys_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Jeffreys interval: equal-tailed quantiles of the Beta(k + 1/2, n - k + 1/2) posterior.

    Following Brown, Cai and DasGupta (2001) the lower bound is 0 at ``k = 0`` and the upper
    bound is 1 at ``k = n``.

    :param k: number of events (failures).
    :param n: number of trials; with 0 trials the interval is (0, 1).
    :param confidence: two-sided confidence level.
    """
    _check(k, n, confidence)
    if n == 0:
        return 0.0, 1.0
    from scipy.stats import beta  # heavy: imported only when this method is used

    alpha = 1.0 - confidence
    lo = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k + 0.5, n - k + 0.5))
    hi = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 0.5, n - k + 0.5))
    return lo, hi


def binomial_interval(k: int, n: int, confidence: float = 0.95,
                      method: str = "wilson") -> tuple[float, float]:
    """Confidence interval for ``k / n`` by ``method`` (one of :data:`METHODS`).

    :param k: number of events.
    :param n: number of trials.
    :param confidence: two-sided confidence level.
    :param method: ``wilson`` or ``jeffreys``.
    :raises ValueError: on an unknown method.
    """
    if method == "wilson":
        return wilson_interval(k, n, confidence)
    if method == "jeffreys":
        return jeffreys_interval(k, n, confidence)
    raise ValueError(f"unknown interval method {method!r}; use one of {METHODS}")


@dataclass(frozen=True)
class FailureRate:
    """The observed failure rate of one perturbation set.

    :param perturbations: the (cumulative) perturbation names; ``()`` is the nominal scene.
    :param n: completed, judged rollouts.
    :param failures: completed rollouts judged unsuccessful.
    :param excluded: aborted, cancelled or unavailable rollouts (not in ``n``).
    :param lo: lower bound of the interval on the failure rate.
    :param hi: upper bound of the interval on the failure rate.
    """

    perturbations: tuple[str, ...]
    n: int
    failures: int
    excluded: int
    lo: float
    hi: float

    @property
    def rate(self) -> float | None:
        """``failures / n``, or None without completed rollouts."""
        return self.failures / self.n if self.n else None

    def to_dict(self) -> dict[str, Any]:
        return {"perturbations": list(self.perturbations), "n": self.n, "failures": self.failures,
                "excluded": self.excluded, "rate": self.rate, "lo": self.lo, "hi": self.hi}


def failure_rates(records: Iterable[RolloutRecord], confidence: float = 0.95,
                  method: str = "wilson") -> dict[tuple[str, ...], FailureRate]:
    """Group rollouts by perturbation set and compute each set's failure rate and interval.

    Sets are keyed by the perturbation tuple as applied (order kept: a later perturbation of the
    same target overrides an earlier one), in order of first appearance.

    :param records: stored rollouts, e.g. ``store.records("sweep/")``.
    :param confidence: two-sided confidence level of the intervals.
    :param method: interval method, one of :data:`METHODS`.
    """
    counts: dict[tuple[str, ...], list[int]] = {}
    for r in records:
        n_fail_excl = counts.setdefault(tuple(r.perturbations), [0, 0, 0])
        if r.status == RolloutStatus.COMPLETED.value:
            n_fail_excl[0] += 1
            n_fail_excl[1] += int(r.failed)
        else:
            n_fail_excl[2] += 1
    table = {}
    for perts, (n, k, excluded) in counts.items():
        lo, hi = binomial_interval(k, n, confidence, method)
        table[perts] = FailureRate(perts, n, k, excluded, lo, hi)
    return table
