"""What every diagnosing agent is (:class:`Agent`) and the base of the agents that pick one
member per rollout from outcome counts (:class:`BanditAgent`); the agents themselves are in
:mod:`robomd_diagnoser.agents` and :mod:`robomd_diagnoser.search_agents`."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from robomd_diagnoser.world import RolloutStatus

StepHook = Callable[[int, Sequence[dict[str, Any]]], bool]
"""Called after every vectorised step with (agent steps so far, the step's infos); returning False
stops the agent."""


class Agent(ABC):
    """A diagnosing agent: acts in a vectorised
    :class:`~robomd_diagnoser.diagnosis_env.DiagnosisEnv`."""

    kind: str = ""

    @abstractmethod
    def run(self, venv: Any, budget: int, on_step: StepHook) -> None:
        """Act until ``budget`` agent steps (rounded up to a multiple of ``venv.num_envs``) or
        until ``on_step`` returns False.

        :param venv: a Stable-Baselines3 VecEnv of diagnosis environments.
        :param budget: agent steps (one rollout each, plus retries of aborted ones).
        :param on_step: progress/checkpoint hook.
        """

    @abstractmethod
    def failure_likelihood(self, observations: np.ndarray) -> np.ndarray:
        """P_fail over the catalog, summing to 1 (see the module doc).

        :param observations: nominal-scene images, (K, H, W, 3) uint8.
        """

    @abstractmethod
    def save(self, path: Path) -> Path:
        """Write a checkpoint; returns the file written.

        :param path: file path without suffix (a suffix is added).
        """

    def predictions(self) -> list[Any]:
        """Model-based decisions about members the agent's rollouts leave undecided (only
        generalising agents make them; see :mod:`robomd_diagnoser.search_agents`)."""
        return []


class BanditAgent(Agent):
    """Base of the non-RL baselines: one perturbation per rollout, Beta-Bernoulli counts.

    :param n_actions: catalog size.
    :param seed: seeds the baseline's own randomness.
    :param prior_alpha: Beta prior pseudo-failures.
    :param prior_beta: Beta prior pseudo-successes.
    """

    def __init__(self, n_actions: int, seed: int, prior_alpha: float = 1.0,
                 prior_beta: float = 1.0) -> None:
        self.n_actions = n_actions
        self.rng = np.random.default_rng(seed)
        self.prior_alpha = prior_alpha
        self.prior_beta = prior_beta
        self.trials = np.zeros(n_actions, dtype=int)
        self.failures = np.zeros(n_actions, dtype=int)

    @abstractmethod
    def choose(self, agent_step: int) -> int:
        """The perturbation index for ``agent_step``."""

    def update(self, info: dict[str, Any], action: int) -> None:
        """Count a finished step's outcome (non-completed rollouts are not counted).

        :param info: the env's step info.
        :param action: the perturbation index that was applied.
        """
        if info["status"] == RolloutStatus.COMPLETED.value:
            self.trials[action] += 1
            self.failures[action] += int(not info["success"])

    def posterior_mean(self) -> np.ndarray:
        """Posterior mean failure rate of each perturbation."""
        return (self.prior_alpha + self.failures) / (
            self.prior_alpha + self.prior_beta + self.trials)

    def run(self, venv: Any, budget: int, on_step: StepHook) -> None:
        venv.reset()
        done = 0
        while done < budget:
            actions = np.array([self.choose(done + i) for i in range(venv.num_envs)])
            _, _, _, infos = venv.step(actions)
            for info, action in zip(infos, actions, strict=True):
                self.update(info, int(action))
            done += venv.num_envs
            if not on_step(done, infos):
                break

    def failure_likelihood(self, observations: np.ndarray) -> np.ndarray:
        mean = self.posterior_mean()
        return mean / mean.sum()

    def save(self, path: Path) -> Path:
        path = Path(path).with_suffix(".json")
        path.write_text(json.dumps({"kind": self.kind, "trials": self.trials.tolist(),
                                    "failures": self.failures.tolist(),
                                    "prior": [self.prior_alpha, self.prior_beta]}))
        return path
