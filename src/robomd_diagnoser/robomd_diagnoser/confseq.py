"""Anytime-valid confidence sequences for failure rates, and the failure-mode decision rule.

A diagnosing agent chooses where to roll out from what it has seen, and a campaign may stop when
it has seen enough. A fixed-n interval (Wilson, Jeffreys) assumes neither; it can under-cover.
Here every member's rate gets a **confidence sequence** that covers the true rate at every
sample size simultaneously, so it stays valid under adaptive sampling and optional stopping.

Construction (Robbins' mixture; Howard, Ramdas, McAuliffe and Sekhon 2021, "Time-uniform,
nonparametric, nonasymptotic confidence sequences", beta-binomial case): after ``n`` Bernoulli
outcomes with ``k`` failures, for a candidate rate ``p``

    M_n(p) = B(a + k, b + n - k) / B(a, b) / (p^k (1 - p)^(n - k))

is the likelihood ratio of a Beta(a, b) mixture of alternatives against ``p``. Under rate ``p``
it is a nonnegative martingale with mean 1, also when the member's rollouts are interleaved with
other members' by any rule that uses only past outcomes. Ville's inequality gives
``P(exists n: M_n(p) >= 1/alpha) <= alpha``, so ``{p : M_n(p) < 1/alpha}`` is a
``1 - alpha`` confidence sequence. ``log M_n`` is convex in ``p`` with its minimum (<= 0) at
``k / n``, so the set is an interval; its ends are found by bisection.

Decision rule at threshold ``t`` (a "failure mode" is a member with rate >= t) and
``alpha = 1 - confidence``:

- the e-value against "rate < t" is ``E = M_n(t)`` when ``k / n > t`` (else 1, no evidence),
  against "rate >= t" it is ``M_n(t)`` when ``k / n < t``. ``M_n(t)`` is the smallest of
  ``M_n(p)`` over the null rates, so each is a valid e-value at any stopping time.
- Multiplicity: the e-Benjamini-Hochberg procedure (Wang and Ramdas 2022) over **all** ``N``
  members of the space, run separately for the two claims. With ``R`` claims, a member is
  claimed when ``E >= N / (alpha R)``. The expected share of wrong "failure mode" claims
  (the false discovery rate) is at most ``alpha``, and likewise for "not a failure mode"
  claims, whatever the dependence between members, the sampling rule or the stopping time.
- Because ``N / (alpha R) >= 1 / alpha``, every "failure mode" has its per-member interval's
  lower bound ``>= t``, and every "not a failure mode" its upper bound ``< t``. All other
  members are "undecided".

Reported intervals are the per-member ``confidence`` sequences (each covers its member's true
rate at all times with probability >= confidence).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.special import betaln

#: Beta mixture parameters. Jeffreys' Beta(1/2, 1/2) puts weight near 0 and 1, where a policy's
#: failure rates usually are, so clear-cut members are decided in fewer rollouts.
PRIOR = (0.5, 0.5)

FAILURE_MODE = "failure mode"
NOT_FAILURE_MODE = "not a failure mode"
UNDECIDED = "undecided"
DECISIONS = (FAILURE_MODE, NOT_FAILURE_MODE, UNDECIDED)


def _check(k: int, n: int, alpha: float) -> None:
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= failures <= trials, got failures={k}, trials={n}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha = 1 - confidence must be in (0, 1), got {alpha}")


def log_martingale(k: Any, n: Any, p: Any, prior: tuple[float, float] = PRIOR) -> np.ndarray:
    """``log M_n(p)`` of the module doc (vectorised; ``p`` in (0, 1) or 0/1 where finite).

    :param k: failures.
    :param n: trials.
    :param p: candidate rates.
    :param prior: Beta mixture parameters (a, b).
    """
    a, b = prior
    k, n, p = (np.asarray(x, dtype=float) for x in (k, n, p))
    with np.errstate(divide="ignore", invalid="ignore"):
        log_lik = (np.where(k > 0, k * np.log(p), 0.0)
                   + np.where(n - k > 0, (n - k) * np.log1p(-p), 0.0))
    return betaln(a + k, b + n - k) - betaln(a, b) - log_lik


@lru_cache(maxsize=65536)
def confidence_sequence(k: int, n: int, alpha: float = 0.05,
                        prior: tuple[float, float] = PRIOR) -> tuple[float, float]:
    """The anytime-valid ``1 - alpha`` interval for a rate after ``k`` failures in ``n`` trials.

    :param k: failures.
    :param n: trials; with 0 trials the interval is (0, 1).
    :param alpha: 1 - confidence.
    :param prior: Beta mixture parameters.
    """
    _check(k, n, alpha)
    if n == 0:
        return 0.0, 1.0
    level = math.log(1.0 / alpha)
    mle = k / n

    def outside(p: float) -> bool:
        return float(log_martingale(k, n, p, prior)) >= level

    def edge(inside: float, out: float) -> float:
        for _ in range(60):  # 2^-60: below float resolution of a rate
            mid = 0.5 * (inside + out)
            if outside(mid):
                out = mid
            else:
                inside = mid
        return inside

    lo = 0.0 if k == 0 else edge(mle, 0.0)
    hi = 1.0 if k == n else edge(mle, 1.0)
    return lo, hi


def e_values(failures: np.ndarray, trials: np.ndarray, threshold: float,
             prior: tuple[float, float] = PRIOR) -> tuple[np.ndarray, np.ndarray]:
    """Log e-values against "rate < threshold" and against "rate >= threshold" per member.

    :param failures: failures per member.
    :param trials: trials per member.
    :param threshold: the failure-mode threshold, in (0, 1).
    :param prior: Beta mixture parameters.
    :returns: (log E for a failure-mode claim, log E for a not-a-failure-mode claim); 0 where
        the data point the other way.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be in (0, 1), e.g. 0.5; got {threshold}")
    k = np.asarray(failures, dtype=float)
    n = np.asarray(trials, dtype=float)
    log_m = log_martingale(k, n, threshold, prior)
    with np.errstate(invalid="ignore"):
        mle = np.where(n > 0, k / np.maximum(n, 1), threshold)
    return np.where(mle > threshold, log_m, 0.0), np.where(mle < threshold, log_m, 0.0)


def ebh(log_e: np.ndarray, alpha: float) -> np.ndarray:
    """e-Benjamini-Hochberg: which hypotheses to reject at FDR level ``alpha``.

    :param log_e: log e-values, one per hypothesis (all hypotheses of the family).
    :param alpha: FDR level.
    :returns: boolean mask of rejections.
    """
    log_e = np.asarray(log_e, dtype=float)
    m = len(log_e)
    if m == 0:
        return np.zeros(0, dtype=bool)
    order = np.argsort(-log_e)
    ranks = np.arange(1, m + 1)
    ok = log_e[order] >= np.log(m / (alpha * ranks))
    reject = np.zeros(m, dtype=bool)
    if ok.any():
        r = int(np.nonzero(ok)[0].max()) + 1
        reject[order[:r]] = True
    return reject


def decide(failures: np.ndarray, trials: np.ndarray, threshold: float, confidence: float,
           prior: tuple[float, float] = PRIOR) -> np.ndarray:
    """Each member's decision (see the module doc) as codes 1 failure mode, -1 not, 0 undecided.

    :param failures: failures per member (all members of the space).
    :param trials: trials per member.
    :param threshold: failure-mode threshold.
    :param confidence: the campaign's confidence (FDR level ``1 - confidence``).
    :param prior: Beta mixture parameters.
    """
    alpha = 1.0 - confidence
    log_fail, log_not = e_values(failures, trials, threshold, prior)
    return ebh(log_fail, alpha).astype(int) - ebh(log_not, alpha).astype(int)


@dataclass(frozen=True)
class RateEstimate:
    """One member's observed rate, anytime-valid interval and decision.

    :param failures: failed rollouts.
    :param trials: judged rollouts.
    :param lo: interval lower bound.
    :param hi: interval upper bound.
    :param decision: one of :data:`DECISIONS`.
    """

    failures: int
    trials: int
    lo: float
    hi: float
    decision: str

    @property
    def rate(self) -> float | None:
        """``failures / trials``, or None without trials."""
        return self.failures / self.trials if self.trials else None

    def to_dict(self) -> dict[str, Any]:
        return {"failures": self.failures, "trials": self.trials, "rate": self.rate,
                "lo": self.lo, "hi": self.hi, "decision": self.decision}


def estimates(failures: np.ndarray, trials: np.ndarray, threshold: float,
              confidence: float) -> list[RateEstimate]:
    """Rates, anytime-valid intervals at ``confidence`` and decisions for all members.

    :param failures: failures per member.
    :param trials: trials per member.
    :param threshold: failure-mode threshold.
    :param confidence: the campaign's confidence.
    """
    codes = decide(failures, trials, threshold, confidence)
    names = {1: FAILURE_MODE, -1: NOT_FAILURE_MODE, 0: UNDECIDED}
    out = []
    for k, n, c in zip(np.asarray(failures, int), np.asarray(trials, int), codes, strict=True):
        lo, hi = confidence_sequence(int(k), int(n), 1.0 - confidence)
        out.append(RateEstimate(int(k), int(n), lo, hi, names[int(c)]))
    return out
