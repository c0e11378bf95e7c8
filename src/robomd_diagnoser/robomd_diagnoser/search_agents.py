"""Agents that search a space for failure modes and decide each member (see
:mod:`robomd_diagnoser.confseq` for the intervals and the decision rule).

- ``good_arm``: good-arm identification. Each rollout goes to an undecided member with the
  largest anytime-valid upper bound (ties at random; an untried member's bound is 1), so it
  tries every member and confirms the failing ones; it has nothing left to do when every member
  is decided.
- ``factor``: a generalising agent. An additive model over factor levels
  (:class:`~robomd_diagnoser.factor_model.FactorModel`) scores every member, tried or not, by
  ``q = P(rate >= threshold)``. Each rollout goes to the member not yet decided with the largest
  ``q^2 (1 - q) / (1 + trials)`` (likely failing, not yet certain, not yet sampled much), or with
  probability ``explore`` to a random untried member (the model cannot foresee an interaction it
  has never seen). Members not decided by their own rollouts whose ``q`` reaches the confidence
  (or ``1 - q`` does) are reported as **predictions**, with the level effects behind them.

:class:`DecidedMask` gives PPO (``mask_decided: true``) the same notion of "decided": the actions
of decided members are masked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

from robomd_diagnoser.agent_base import BanditAgent
from robomd_diagnoser.confseq import (
    FAILURE_MODE,
    NOT_FAILURE_MODE,
    confidence_sequence,
    decide,
)
from robomd_diagnoser.factor_model import FactorModel
from robomd_diagnoser.space_truth import Levels


def own_families(n: int) -> list[Levels]:
    """Levels for members with no known factor structure: each member its own family."""
    return [((f"member{i}", f"member{i}"),) for i in range(n)]


@dataclass(frozen=True)
class Prediction:
    """A model-based decision about a member that its own rollouts do not decide.

    :param index: the member's index.
    :param decision: :data:`~robomd_diagnoser.confseq.FAILURE_MODE` or ``NOT_FAILURE_MODE``.
    :param probability: the model's P(rate >= threshold).
    :param failures: the member's own failed rollouts (evidence).
    :param trials: the member's own rollouts (0: never rolled out).
    :param evidence: the member's levels with their fitted effects on the failure logit.
    """

    index: int
    decision: str
    probability: float
    failures: int
    trials: int
    evidence: tuple[tuple[str, str, float], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "decision": self.decision, "probability": self.probability,
                "failures": self.failures, "trials": self.trials,
                "evidence": [{"family": f, "level": lv, "effect": e}
                             for f, lv, e in self.evidence]}


class DecidingAgent(BanditAgent):
    """Base of the agents that sample toward decisions at a threshold and confidence.

    :param n_actions: members in the space.
    :param seed: seeds the agent's randomness.
    :param threshold: failure-mode threshold.
    :param confidence: the campaign's confidence.
    """

    def __init__(self, n_actions: int, seed: int, threshold: float = 0.5,
                 confidence: float = 0.95) -> None:
        super().__init__(n_actions, seed)
        self.threshold = threshold
        self.confidence = confidence
        self._codes = np.zeros(n_actions, dtype=int)
        self._decided_at = 0
        self._taken: set[int] = set()

    def update(self, info: dict[str, Any], action: int) -> None:
        super().update(info, action)
        self._taken.clear()

    def decisions(self) -> np.ndarray:
        """Decision codes from the members' own rollouts (1 failure mode, -1 not, 0 undecided),
        refreshed every ``max(1, N // 200)`` rollouts (in a large space the e-BH pass over all
        members is the agent's main cost)."""
        done = int(self.trials.sum())
        if done - self._decided_at >= max(1, self.n_actions // 200) or done < self._decided_at:
            self._codes = decide(self.failures, self.trials, self.threshold, self.confidence)
            self._decided_at = done
        return self._codes

    def _pick(self, score: np.ndarray) -> int:
        """The best-scoring member not already chosen in this step (ties at random)."""
        score = score.astype(float).copy()
        score[list(self._taken)] = -np.inf
        best = np.flatnonzero(score >= score.max() - 1e-12)
        choice = int(self.rng.choice(best))
        self._taken.add(choice)
        return choice


class GoodArmAgent(DecidingAgent):
    """Good-arm identification with anytime-valid confidence sequences (module doc)."""

    kind = "good_arm"

    def __init__(self, n_actions: int, seed: int, threshold: float = 0.5,
                 confidence: float = 0.95) -> None:
        super().__init__(n_actions, seed, threshold, confidence)
        self.upper = np.ones(n_actions)

    def update(self, info: dict[str, Any], action: int) -> None:
        super().update(info, action)
        self.upper[action] = confidence_sequence(int(self.failures[action]),
                                                 int(self.trials[action]),
                                                 1.0 - self.confidence)[1]

    def choose(self, agent_step: int) -> int:
        undecided = self.decisions() == 0
        if not undecided.any():
            undecided[:] = True
        return self._pick(np.where(undecided, self.upper, -np.inf))


class FactorAgent(DecidingAgent):
    """The generalising agent of the module doc.

    :param n_actions: members in the space.
    :param seed: seeds the agent's randomness.
    :param members: each member's (family, level) pairs; None: each member its own family.
    :param threshold: failure-mode threshold.
    :param confidence: the campaign's confidence.
    :param refit_every: rollouts between model fits (at least; later fits are spaced by 5% of
        the rollouts so far).
    :param explore: probability of rolling out a random untried member instead.
    :param prior_scale: prior sd of the level effects (logit scale).
    :param interaction_scale: prior sd of a member's interaction (logit scale).
    """

    kind = "factor"

    def __init__(self, n_actions: int, seed: int, members: Sequence[Levels] | None = None,
                 threshold: float = 0.5, confidence: float = 0.95, refit_every: int = 16,
                 explore: float = 0.1, prior_scale: float = 3.0,
                 interaction_scale: float = 1.0) -> None:
        super().__init__(n_actions, seed, threshold, confidence)
        members = list(members) if members is not None else own_families(n_actions)
        if len(members) != n_actions:
            raise ValueError(f"FactorAgent: {len(members)} member level sets for "
                             f"{n_actions} members")
        self.members = members
        self.model = FactorModel(members, prior_scale, interaction_scale)
        self.refit_every = refit_every
        self.explore = explore
        self._fitted_at = -1
        self._q = np.full(n_actions, 0.5)

    def probabilities(self) -> np.ndarray:
        """The model's P(rate >= threshold) per member (refitted when due)."""
        done = int(self.trials.sum())
        if self._fitted_at < 0 or done >= max(self._fitted_at + self.refit_every,
                                              1.05 * self._fitted_at):
            if done:
                self.model.fit(self.failures, self.trials)
            self._q = self.model.prob_above(self.threshold, self.failures, self.trials)
            self._fitted_at = done
        return self._q

    def choose(self, agent_step: int) -> int:
        q = self.probabilities()
        untried = self.trials == 0
        if untried.any() and self.rng.random() < self.explore:
            return self._pick(np.where(untried, 0.0, -np.inf))
        open_ = self.decisions() == 0
        if not open_.any():
            open_[:] = True
        return self._pick(np.where(open_, q * q * (1 - q) / (1 + self.trials), -np.inf))

    def posterior_mean(self) -> np.ndarray:
        """The model's P(rate >= threshold), the agent's failure score."""
        return self.probabilities().copy()

    def predictions(self) -> list[Prediction]:
        """Model-based decisions for members their own rollouts leave undecided."""
        q = self.probabilities()
        codes = self.decisions()
        effects = dict(zip(self.model.levels, self.model.w[1:], strict=True))
        out = []
        for i in np.flatnonzero(codes == 0):
            if q[i] >= self.confidence:
                decision = FAILURE_MODE
            elif 1 - q[i] >= self.confidence:
                decision = NOT_FAILURE_MODE
            else:
                continue
            out.append(Prediction(int(i), decision, float(q[i]), int(self.failures[i]),
                                  int(self.trials[i]),
                                  tuple((f, lv, float(effects[(f, lv)]))
                                        for f, lv in self.members[i])))
        return out


class DecidedMask(VecEnvWrapper):
    """Counts single-member rollouts and answers sb3-contrib's ``action_masks`` with the members
    still undecided (all of them once every member is decided).

    :param venv: the diagnosis VecEnv.
    :param threshold: failure-mode threshold.
    :param confidence: the campaign's confidence.
    """

    def __init__(self, venv: VecEnv, threshold: float, confidence: float) -> None:
        super().__init__(venv)
        n = int(venv.action_space.n)
        self.failures = np.zeros(n, dtype=int)
        self.trials = np.zeros(n, dtype=int)
        self.threshold = threshold
        self.confidence = confidence
        self._actions = np.zeros(venv.num_envs, dtype=int)

    def reset(self) -> Any:
        return self.venv.reset()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).reshape(-1)
        self.venv.step_async(actions)

    def step_wait(self) -> Any:
        obs, rewards, dones, infos = self.venv.step_wait()
        for action, info in zip(self._actions, infos, strict=True):
            if info["success"] is not None and len(info["perturbations"]) == 1:
                self.trials[action] += 1
                self.failures[action] += not info["success"]
        return obs, rewards, dones, infos

    def has_attr(self, attr_name: str) -> bool:
        return attr_name == "action_masks" or self.venv.has_attr(attr_name)

    def env_method(self, method_name: str, *args: Any, indices: Any = None,
                   **kwargs: Any) -> list[Any]:
        if method_name != "action_masks":
            return self.venv.env_method(method_name, *args, indices=indices, **kwargs)
        mask = decide(self.failures, self.trials, self.threshold, self.confidence) == 0
        if not mask.any():
            mask[:] = True
        return [mask.copy() for _ in range(self.num_envs)]
