"""An additive model of failure over factor levels, to score members that were never rolled out.

Each member of a space is a set of (family, level) pairs. The model:

    logit(rate of member m) = w_0 + sum_{l in m} w_l + u_m

with Gaussian priors ``w_0 ~ N(0, prior_scale^2)``, ``w_l ~ N(0, prior_scale^2)`` (level main
effects) and a member-specific interaction ``u_m ~ N(0, interaction_scale^2)`` (for a pair, the
pair interaction; it is what the levels cannot explain). The main effects are fitted to the
observed counts of all tried members (binomial likelihood, maximum a posteriori by Newton's
method, Laplace approximation for their covariance). For a member the predictive logit is then
normal with mean ``x_m . w`` and variance ``x_m' S x_m + interaction_scale^2``; a tried member's
own counts update that prior (a Beta matched to its two moments).

These are **model-based** (Bayesian) statements, not anytime-valid ones: a prediction is only as
good as the additive structure. They rank, and they mark untried members as predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import betainc, expit, logit, ndtr, ndtri

from robomd_diagnoser.space_truth import Levels


@dataclass(frozen=True)
class LevelEffect:
    """A level's fitted main effect on the failure logit, with a central credible interval.

    :param family: the factor family.
    :param level: the level.
    :param effect: posterior mean of ``w_l``.
    :param lo: lower credible bound.
    :param hi: upper credible bound.
    :param members_tried: tried members containing the level.
    """

    family: str
    level: str
    effect: float
    lo: float
    hi: float
    members_tried: int


class FactorModel:
    """The additive logistic model of the module doc.

    :param members: levels of every member of the space.
    :param prior_scale: prior standard deviation of the intercept and the level effects.
    :param interaction_scale: prior standard deviation of a member's interaction.
    """

    def __init__(self, members: Sequence[Levels], prior_scale: float = 3.0,
                 interaction_scale: float = 1.0) -> None:
        self.levels = sorted({lv for m in members for lv in m})
        index = {lv: i + 1 for i, lv in enumerate(self.levels)}
        self.x = np.zeros((len(members), len(self.levels) + 1))
        self.x[:, 0] = 1.0
        for r, m in enumerate(members):
            for lv in m:
                self.x[r, index[lv]] = 1.0
        self.prior_scale = prior_scale
        self.interaction_scale = interaction_scale
        self.w = np.zeros(self.x.shape[1])
        self.cov = np.eye(self.x.shape[1]) * prior_scale ** 2
        self.trials = np.zeros(len(members))

    def fit(self, failures: np.ndarray, trials: np.ndarray, iterations: int = 25) -> None:
        """Fit the main effects to the counts (warm-started from the last fit).

        :param failures: failures per member.
        :param trials: trials per member.
        """
        k = np.asarray(failures, float)
        n = np.asarray(trials, float)
        self.trials = n
        tried = n > 0
        x, k, n = self.x[tried], k[tried], n[tried]
        precision = np.eye(self.x.shape[1]) / self.prior_scale ** 2
        w = self.w
        for _ in range(iterations):
            p = expit(x @ w)
            grad = x.T @ (k - n * p) - precision @ w
            hess = (x * (n * p * (1 - p))[:, None]).T @ x + precision
            step = np.linalg.solve(hess, grad)
            w = w + step
            if np.abs(step).max() < 1e-6:
                break
        p = expit(x @ w)
        hess = (x * (n * p * (1 - p))[:, None]).T @ x + precision
        self.w = w
        self.cov = np.linalg.inv(hess)

    def predictive_logit(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation of each member's logit before its own counts."""
        mean = self.x @ self.w
        var = ((self.x @ self.cov) * self.x).sum(axis=1) + self.interaction_scale ** 2
        return mean, np.sqrt(var)

    def prob_above(self, threshold: float, failures: np.ndarray,
                   trials: np.ndarray) -> np.ndarray:
        """P(rate >= threshold) per member under the model, given each member's own counts.

        :param threshold: the failure-mode threshold.
        :param failures: failures per member.
        :param trials: trials per member.
        """
        mean, sd = self.predictive_logit()
        untried = ndtr(-(logit(threshold) - mean) / sd)
        # Tried: a Beta prior with the logit-normal's two moments (Gauss-Hermite quadrature),
        # updated with the member's own counts.
        nodes, weights = np.polynomial.hermite_e.hermegauss(24)
        s = expit(mean[:, None] + sd[:, None] * nodes[None, :])
        weights = weights / weights.sum()
        m = np.clip(s @ weights, 1e-6, 1 - 1e-6)
        v = np.maximum(s ** 2 @ weights - m ** 2, 1e-9)
        strength = np.clip(m * (1 - m) / v - 1, 0.5, 200.0)
        a = m * strength + np.asarray(failures, float)
        b = (1 - m) * strength + np.asarray(trials, float) - np.asarray(failures, float)
        tried = 1.0 - betainc(a, b, threshold)
        return np.where(np.asarray(trials) > 0, tried, untried)

    def effects(self, confidence: float = 0.95) -> list[LevelEffect]:
        """Every level's main effect with a ``confidence`` credible interval, largest first."""
        z = ndtri(0.5 + confidence / 2)
        sd = np.sqrt(np.diag(self.cov))
        tried = (self.x[self.trials > 0, :] > 0).sum(axis=0)
        rows = [LevelEffect(f, lv, float(self.w[i + 1]), float(self.w[i + 1] - z * sd[i + 1]),
                            float(self.w[i + 1] + z * sd[i + 1]), int(tried[i + 1]))
                for i, (f, lv) in enumerate(self.levels)]
        return sorted(rows, key=lambda e: -e.effect)
