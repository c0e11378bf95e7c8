"""Which factor levels raise failure, and which combinations fail where their parts do not.

- Level effects: the main effects of :class:`~robomd_diagnoser.factor_model.FactorModel` fitted
  to a campaign's counts, on the failure logit, with central credible intervals (model-based,
  not anytime-valid).
- Interactions: tried multi-level members whose anytime-valid interval lies above that of every
  one of their single levels tried as members; ranked by the gap between the member's lower
  bound and the largest upper bound of its singles (both at the campaign's confidence).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from robomd_diagnoser.confseq import confidence_sequence
from robomd_diagnoser.factor_model import FactorModel
from robomd_diagnoser.space_truth import Levels


def has_structure(levels: Sequence[Levels]) -> bool:
    """Whether some level is shared by two members (else effects are per-member rates)."""
    seen: set[tuple[str, str]] = set()
    for m in levels:
        for lv in m:
            if lv in seen:
                return True
            seen.add(lv)
    return False


def level_effects(levels: Sequence[Levels], failures: np.ndarray, trials: np.ndarray,
                  confidence: float = 0.95) -> list[dict[str, Any]]:
    """Fitted level effects (largest first), each with its credible interval.

    :param levels: each member's (family, level) pairs.
    :param failures: failures per member.
    :param trials: trials per member.
    :param confidence: level of the credible intervals.
    """
    model = FactorModel(levels)
    model.fit(failures, trials)
    return [{"family": e.family, "level": e.level, "effect": e.effect, "lo": e.lo, "hi": e.hi,
             "members_tried": e.members_tried, "raises_failure": e.lo > 0}
            for e in model.effects(confidence)]


def interactions(names: Sequence[str], levels: Sequence[Levels], failures: np.ndarray,
                 trials: np.ndarray, confidence: float = 0.95,
                 top: int = 10) -> list[dict[str, Any]]:
    """The strongest interactions (see the module doc).

    :param names: member names.
    :param levels: each member's (family, level) pairs.
    :param failures: failures per member.
    :param trials: trials per member.
    :param confidence: of the anytime-valid intervals.
    :param top: how many to return.
    """
    alpha = 1.0 - confidence
    single = {m[0]: i for i, m in enumerate(levels) if len(m) == 1}
    rows = []
    for i, m in enumerate(levels):
        if len(m) < 2 or trials[i] == 0:
            continue
        parts = [single.get(lv) for lv in m]
        if any(p is None or trials[p] == 0 for p in parts):
            continue
        lo, hi = confidence_sequence(int(failures[i]), int(trials[i]), alpha)
        part_hi = max(confidence_sequence(int(failures[p]), int(trials[p]), alpha)[1]
                      for p in parts)
        if lo > part_hi:
            rows.append({"name": names[i], "rate": failures[i] / trials[i], "lo": lo, "hi": hi,
                         "trials": int(trials[i]), "gap": lo - part_hi,
                         "singles": [{"name": names[p], "rate": failures[p] / trials[p],
                                      "trials": int(trials[p])} for p in parts]})
    rows.sort(key=lambda r: -r["gap"])
    return rows[:top]
