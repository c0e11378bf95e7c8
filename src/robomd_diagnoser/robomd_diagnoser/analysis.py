"""From an agent's failure likelihood and a campaign's rollouts to a diagnosis.

- ``entropy``: of P_fail over the catalog, in nats (the paper's Table II unit; ln 21 = 3.04 is
  the uniform maximum for Lift).
- ``num_failure_modes``: perturbations with P_fail above uniform (1/N), the paper-comparable
  count. ``num_confirmed_failure_modes``: perturbations whose observed failure rate has an
  anytime-valid lower bound of at least :data:`CONFIRMED_MIN_RATE` (they fail at least one rollout
  in four, at the campaign's confidence): a count from measurements, not from the agent's
  preferences.
- Each perturbation's rate comes with an anytime-valid interval (valid however the agent chose
  where to sample and when the campaign stopped) and a decision at the campaign's threshold and
  confidence: failure mode, not a failure mode, or undecided (:mod:`robomd_diagnoser.confseq`);
  a generalising agent adds predictions for members its rollouts leave undecided.
- With factor structure (levels shared by members): level effects and the strongest
  interactions (:mod:`robomd_diagnoser.factor_analysis`).
- ``fsi``: Failure Severity Index ``sum_a P_fail(a) * W_a`` with ``W_a = P_fail(a) / max P_fail``.
- Observed failure rates: only rollouts of a single perturbation on the nominal scene (the first
  step of an episode) count towards a perturbation's rate; rollouts of accumulated sets are
  reported separately per set (``combinations``), because their outcome is not the last added
  perturbation's alone.
- Against a ground-truth sweep: pairwise accuracy over perturbation pairs whose true failure rates
  differ by at least :data:`PAIR_MIN_GAP` (ties in the score count half), and Kendall's tau-b over
  all perturbations.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robomd_diagnoser.catalog import Catalog
from robomd_diagnoser.confseq import FAILURE_MODE, UNDECIDED, estimates
from robomd_diagnoser.factor_analysis import has_structure, interactions, level_effects
from robomd_diagnoser.space_truth import load_space_truth
from robomd_diagnoser.stats import failure_rates
from robomd_diagnoser.store import RolloutRecord
from robomd_diagnoser.world import RolloutStatus

CONFIRMED_MIN_RATE = 0.25
PAIR_MIN_GAP = 0.2
CONFIDENCE = 0.95


@dataclass(frozen=True)
class GroundTruth:
    """Per-perturbation failure rates measured by an exhaustive sweep.

    :param rates: failure rate of each perturbation applied alone.
    :param nominal: failure rate of the unperturbed scene, if measured.
    :param source: the file it came from.
    """

    rates: dict[str, float]
    nominal: float | None
    source: str


def load_ground_truth(path: str | Path) -> GroundTruth:
    """Read a sweep's ``failure_rates.json`` (written by ``robomd sweep``) or a space ground
    truth (:mod:`robomd_diagnoser.space_truth`, ``robomd sweep --ground-truth``).

    :param path: the file.
    :raises ValueError: if it is missing or has no measured perturbation rates.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"ground truth {path} does not exist; make one with `robomd sweep` "
                         "(it writes failure_rates.json in its output directory)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"ground truth {path} is not valid JSON ({exc}); is it a sweep's "
                         "failure_rates.json?") from None
    if isinstance(data, dict) and "members" in data:  # a space ground truth
        truth = load_space_truth(path)
        nominal = data.get("nominal")
        return GroundTruth({m.name: m.rate for m in truth.members},
                           nominal["failures"] / nominal["trials"]
                           if isinstance(nominal, dict) and nominal.get("trials") else None,
                           str(path))
    rows = data.get("perturbations") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not rows:
        raise ValueError(f"{path}: expected a sweep's failure_rates.json with a 'perturbations' "
                         "list of {name, failure_rate, ...}, or a space ground truth with "
                         "'members'")
    rates = {}
    for i, row in enumerate(rows):
        rate = row.get("failure_rate") if isinstance(row, dict) else None
        if not isinstance(rate, (int, float)) or not isinstance(row.get("name"), str):
            raise ValueError(f"{path}: perturbations[{i}] needs a name and a measured "
                             f"failure_rate, got {row!r}")
        rates[row["name"]] = float(rate)
    nominal = (data.get("nominal") or {}).get("failure_rate")
    return GroundTruth(rates, None if nominal is None else float(nominal), str(path))


def entropy(p_fail: Sequence[float]) -> float:
    """Shannon entropy of P_fail in nats.

    :param p_fail: probabilities summing to 1.
    """
    p = np.asarray(p_fail, dtype=float)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def fsi(p_fail: Sequence[float]) -> float:
    """Failure Severity Index: ``sum P(a) * W_a`` with ``W_a = P(a) / max P``.

    :param p_fail: probabilities summing to 1.
    """
    p = np.asarray(p_fail, dtype=float)
    return float((p * p / p.max()).sum())


def num_failure_modes(p_fail: Sequence[float]) -> int:
    """Perturbations with P_fail above the uniform 1/N.

    :param p_fail: probabilities summing to 1.
    """
    p = np.asarray(p_fail, dtype=float)
    return int((p > 1.0 / len(p) + 1e-12).sum())


def ranked_pairs(truth: Mapping[str, float], names: Iterable[str] | None = None,
                 min_gap: float = PAIR_MIN_GAP) -> list[tuple[str, str]]:
    """The pairs a ranking is scored on: names whose true failure rates differ by at least
    ``min_gap`` (a float residue below the gap is tolerated: 0.3 - 0.1 counts as 0.2).

    :param truth: true failure rate per perturbation.
    :param names: the names to pair, in order (default: every name of ``truth``); names without
        a true rate are left out.
    :param min_gap: smallest true-rate difference for a pair to count.
    """
    names = [n for n in (truth if names is None else names) if n in truth]
    rows, cols = np.nonzero(_pair_mask(np.array([truth[n] for n in names], dtype=float), min_gap))
    return [(names[i], names[j]) for i, j in zip(rows, cols, strict=True)]


def _pair_mask(t: np.ndarray, min_gap: float) -> np.ndarray:
    """Upper-triangle mask of the pairs of true rates ``t`` at least ``min_gap`` apart (the one
    definition of a scored pair; a float residue is tolerated: 0.3 - 0.1 counts as 0.2)."""
    return np.triu(np.abs(t[:, None] - t[None, :]) >= min_gap - 1e-9, 1)


def pairwise_accuracy(scores: Mapping[str, float], truth: Mapping[str, float],
                      min_gap: float = PAIR_MIN_GAP) -> float | None:
    """Fraction of pairs with true rates ``min_gap`` apart that ``scores`` order the same way.

    Pairs the scores tie count one half. Only names present in both mappings are used.

    :param scores: predicted failure score per perturbation (higher = more failure-prone).
    :param truth: true failure rate per perturbation.
    :param min_gap: smallest true-rate difference for a pair to count.
    :returns: the accuracy, or None if no pair qualifies.
    """
    names = [n for n in truth if n in scores]
    s = np.array([scores[n] for n in names], dtype=float)
    t = np.array([truth[n] for n in names], dtype=float)
    gap = t[:, None] - t[None, :]
    diff = s[:, None] - s[None, :]
    counted = _pair_mask(t, min_gap)
    total = int(counted.sum())
    if not total:
        return None
    right = np.where(diff == 0, 0.5, ((diff > 0) == (gap > 0)).astype(float))
    return float(right[counted].sum() / total)


def kendall_tau(scores: Mapping[str, float], truth: Mapping[str, float]) -> float | None:
    """Kendall's tau-b between ``scores`` and ``truth`` over the names in both.

    :param scores: predicted failure score per perturbation.
    :param truth: true failure rate per perturbation.
    :returns: tau-b in [-1, 1], or None if either side is constant.
    """
    names = [n for n in truth if n in scores]
    conc = disc = tie_x = tie_y = 0
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            dx = np.sign(scores[a] - scores[b])
            dy = np.sign(truth[a] - truth[b])
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                tie_x += 1
            elif dy == 0:
                tie_y += 1
            elif dx == dy:
                conc += 1
            else:
                disc += 1
    denom = math.sqrt((conc + disc + tie_x) * (conc + disc + tie_y))
    return (conc - disc) / denom if denom else None


@dataclass(frozen=True)
class ModeRow:
    """One perturbation in a diagnosis.

    :param name: catalog name.
    :param text: its description.
    :param p_fail: the agent's failure likelihood (sums to 1 over the catalog).
    :param weight: FSI weight, ``p_fail / max p_fail``.
    :param trials: completed single-perturbation rollouts.
    :param failures: of which failed.
    :param rate: ``failures / trials`` (None without trials).
    :param lo: anytime-valid interval at the campaign's confidence, lower bound.
    :param hi: anytime-valid interval, upper bound.
    :param excluded: single-perturbation rollouts that did not complete (never failures).
    :param videos: videos of failing rollouts of this perturbation (paths relative to the
        campaign directory).
    :param decision: failure mode, not a failure mode, or undecided (from its rollouts).
    :param prediction: a generalising agent's prediction when the rollouts leave it undecided.
    """

    name: str
    text: str
    p_fail: float
    weight: float
    trials: int
    failures: int
    rate: float | None
    lo: float
    hi: float
    excluded: int
    videos: tuple[str, ...] = ()
    decision: str = "undecided"
    prediction: dict[str, Any] | None = None


@dataclass(frozen=True)
class Diagnosis:
    """A campaign's result: modes ranked by P_fail, summary numbers, optional accuracy."""

    modes: tuple[ModeRow, ...]
    entropy: float
    num_failure_modes: int
    num_confirmed_failure_modes: int
    fsi: float
    rollouts_completed: int
    rollouts_aborted: int
    combinations: tuple[dict[str, Any], ...]
    accuracy: dict[str, Any] | None = None
    threshold: float = 0.5
    confidence: float = CONFIDENCE
    num_decided_failure_modes: int = 0
    level_effects: tuple[dict[str, Any], ...] = ()
    interactions: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["modes"] = [asdict(m) | {"rank": i + 1} for i, m in enumerate(self.modes)]
        return data


def accuracy_against(p_fail: Mapping[str, float], observed: Mapping[str, float],
                     truth: GroundTruth) -> dict[str, Any]:
    """Ranking quality of P_fail and of the observed rates against a ground-truth sweep.

    :param p_fail: the agent's failure likelihood per perturbation.
    :param observed: observed score per perturbation (posterior mean failure rate).
    :param truth: the sweep.
    :returns: the figures; ``pairs`` counts the pairs the accuracy was computed over (names both
        scored and in the sweep), ``unscored`` lists the sweep's names the campaign did not score.
    """
    pairs = len(ranked_pairs(truth.rates, [n for n in truth.rates if n in p_fail]))
    return {"ground_truth": truth.source, "min_gap": PAIR_MIN_GAP, "pairs": pairs,
            "pairwise_accuracy": pairwise_accuracy(p_fail, truth.rates),
            "kendall_tau": kendall_tau(p_fail, truth.rates),
            "observed_pairwise_accuracy": pairwise_accuracy(observed, truth.rates),
            "observed_kendall_tau": kendall_tau(observed, truth.rates),
            "unscored": [n for n in truth.rates if n not in p_fail],
            "true_rates": dict(truth.rates)}


def reported_decision(mode: ModeRow) -> tuple[str, bool]:
    """A member's reported decision and whether it is a prediction (its own rollouts leave it
    undecided and a generalising agent decided it)."""
    if mode.decision == UNDECIDED and mode.prediction is not None:
        return str(mode.prediction["decision"]), True
    return mode.decision, False


def failure_modes_against(modes: Sequence[ModeRow], truth: GroundTruth,
                          threshold: float) -> dict[str, Any]:
    """The campaign's reported failure modes (decided by rollouts or predicted) checked against a
    ground truth, over the members the ground truth measured.

    A member is a true failure mode when its ground-truth rate is >= ``threshold``.

    :param modes: the diagnosis rows.
    :param truth: the ground truth.
    :param threshold: the campaign's failure-mode threshold.
    :returns: ``reported`` (failure modes reported among the ground truth's members),
        ``confirmed`` / ``refuted`` (names, with how each was reported), ``precision``,
        ``truth_failure_modes`` (how many the ground truth has) and ``recall``; ``outside``
        counts reported failure modes the ground truth did not measure.
    """
    confirmed, refuted, outside = [], [], 0
    for m in modes:
        decision, predicted = reported_decision(m)
        if decision != FAILURE_MODE:
            continue
        if m.name not in truth.rates:
            outside += 1
            continue
        row = {"name": m.name, "predicted": predicted, "true_rate": truth.rates[m.name],
               "failures": m.failures, "trials": m.trials}
        (confirmed if truth.rates[m.name] >= threshold else refuted).append(row)
    reported = len(confirmed) + len(refuted)
    n_true = sum(rate >= threshold for rate in truth.rates.values())
    return {"threshold": threshold, "reported": reported, "confirmed": confirmed,
            "refuted": refuted, "precision": len(confirmed) / reported if reported else None,
            "truth_failure_modes": n_true,
            "recall": len(confirmed) / n_true if n_true else None, "outside": outside}


def diagnose(catalog: Catalog, p_fail: Sequence[float], records: Iterable[RolloutRecord],
             ground_truth: GroundTruth | None = None, *, threshold: float = 0.5,
             confidence: float = CONFIDENCE, predictions: Sequence[Any] = (),
             levels: Sequence[Any] | None = None) -> Diagnosis:
    """Combine P_fail with the campaign's rollouts (and optionally a sweep) into a diagnosis.

    :param catalog: the campaign's catalog (defines the order of ``p_fail``).
    :param p_fail: the agent's failure likelihood, one entry per catalog perturbation.
    :param records: the campaign's stored rollouts.
    :param ground_truth: a sweep to score the ranking against.
    :param threshold: failure-mode threshold of the decisions.
    :param confidence: of the anytime-valid intervals and the decisions.
    :param predictions: a generalising agent's predictions (``Prediction`` objects).
    :param levels: each member's (family, level) pairs, for level effects and interactions.
    """

    p = np.asarray(p_fail, dtype=float)
    if p.shape != (len(catalog),) or not np.isclose(p.sum(), 1.0) or (p < 0).any():
        raise ValueError(f"p_fail must be {len(catalog)} probabilities summing to 1, got {p}")
    records = list(records)
    table = failure_rates(records, CONFIDENCE, "wilson")
    videos: dict[str, list[str]] = {}
    for r in records:
        if r.failed and r.video and len(r.perturbations) == 1:
            videos.setdefault(r.perturbations[0], []).append(r.video)
    counts = np.array([[fr.failures, fr.n, fr.excluded] if (fr := table.get((pert.name,)))
                       else [0, 0, 0] for pert in catalog], dtype=int).reshape(-1, 3)
    est = estimates(counts[:, 0], counts[:, 1], threshold, confidence)
    predicted = {pr.index: pr.to_dict() for pr in predictions}
    rows = []
    for i, pert in enumerate(catalog):
        e = est[i]
        rows.append(ModeRow(pert.name, pert.text, float(p[i]), float(p[i] / p.max()), e.trials,
                            e.failures, e.rate, e.lo, e.hi, int(counts[i, 2]),
                            tuple(videos.get(pert.name, ())), e.decision, predicted.get(i)))
    rows.sort(key=lambda m: -m.p_fail)
    combos = tuple(fr.to_dict() for perts, fr in table.items() if len(perts) > 1)
    completed = sum(r.status == RolloutStatus.COMPLETED.value for r in records)
    accuracy = None
    if ground_truth is not None:
        observed = {m.name: (1 + m.failures) / (2 + m.trials) for m in rows}
        accuracy = accuracy_against({m.name: m.p_fail for m in rows}, observed, ground_truth)
        accuracy["failure_modes"] = failure_modes_against(rows, ground_truth, threshold)
    effects: tuple[dict[str, Any], ...] = ()
    strongest: tuple[dict[str, Any], ...] = ()
    if levels is not None and has_structure(levels) and counts[:, 1].any():
        effects = tuple(level_effects(levels, counts[:, 0], counts[:, 1], confidence))
        strongest = tuple(interactions(catalog.names, levels, counts[:, 0], counts[:, 1],
                                       confidence))
    return Diagnosis(
        modes=tuple(rows), entropy=entropy(p), num_failure_modes=num_failure_modes(p),
        num_confirmed_failure_modes=sum(m.trials > 0 and m.lo >= CONFIRMED_MIN_RATE
                                        for m in rows),
        fsi=fsi(p), rollouts_completed=completed, rollouts_aborted=len(records) - completed,
        combinations=combos, accuracy=accuracy, threshold=threshold, confidence=confidence,
        num_decided_failure_modes=sum(m.decision == "failure mode" for m in rows),
        level_effects=effects, interactions=strongest)
