"""Diagnosing agents under one rollout budget, behind one interface.

- ``ppo`` (the paper's RoboMD agent) and ``a2c``: Stable-Baselines3 with a CNN policy on the
  scene image (:class:`RLAgent`).
- ``uniform``: a sweep, round-robin over the catalog in catalog order (or in a seeded random
  order), one perturbation per rollout (:class:`UniformAgent`).
- ``random``: a uniformly random perturbation per rollout (:class:`RandomAgent`).
- ``thompson``: Thompson sampling with a Beta-Bernoulli posterior on each perturbation's failure
  rate, one perturbation per rollout (:class:`ThompsonAgent`).
- ``good_arm`` and ``factor``: search toward a decision per member (failure mode, not, undecided);
  see :mod:`robomd_diagnoser.search_agents`.

After :meth:`Agent.run`, :meth:`Agent.failure_likelihood` gives P_fail over the catalog (sums to
1). For the RL agents it is Eq. 3: the softmax of the policy's logits at nominal-scene images
(averaged over the images given). For the baselines it is the posterior mean failure rate
``(alpha + failures) / (alpha + beta + trials)`` of each perturbation, normalised to sum to 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from robomd_diagnoser.agent_base import Agent, BanditAgent, StepHook
from robomd_diagnoser.config import AgentConfig


def _sb3_callback(on_step: StepHook, budget: int) -> Any:
    """A Stable-Baselines3 callback that calls ``on_step`` and stops at ``budget`` steps."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Hook(BaseCallback):
        def _on_step(self) -> bool:
            go_on = on_step(self.num_timesteps, self.locals["infos"])
            return go_on and self.num_timesteps < budget

    return Hook()


class RLAgent(Agent):
    """PPO or A2C on the scene image (Stable-Baselines3 ``CnnPolicy``).

    :param kind: ``ppo`` or ``a2c``.
    :param params: hyper-parameters (see :data:`robomd_diagnoser.config.AGENT_PARAMS`); PPO's
        ``batch_size`` is capped at ``n_steps * n_envs``. PPO's ``mask_decided: true`` masks
        the actions of decided members (sb3-contrib ``MaskablePPO``); the default ``false`` is
        the paper's PPO.
    :param seed: seeds the networks, the action sampling and the minibatch order.
    :param tensorboard_dir: write training curves there, if given.
    :param threshold: failure-mode threshold (for ``mask_decided``).
    :param confidence: the campaign's confidence (for ``mask_decided``).
    """

    def __init__(self, kind: str, params: dict[str, Any], seed: int,
                 tensorboard_dir: Path | None = None, threshold: float = 0.5,
                 confidence: float = 0.95) -> None:
        if kind not in ("ppo", "a2c"):
            raise ValueError(f"RLAgent kind must be 'ppo' or 'a2c', got {kind!r}")
        self.kind = kind
        self.params = dict(params)
        self.seed = seed
        self.tensorboard_dir = tensorboard_dir
        self.threshold = threshold
        self.confidence = confidence
        self.model: Any = None

    def run(self, venv: Any, budget: int, on_step: StepHook) -> None:
        from stable_baselines3 import A2C, PPO

        params = dict(self.params)
        algo = PPO if self.kind == "ppo" else A2C
        if params.pop("mask_decided", False):
            from sb3_contrib import MaskablePPO

            from robomd_diagnoser.search_agents import DecidedMask

            venv = DecidedMask(venv, self.threshold, self.confidence)
            algo = MaskablePPO
        if self.kind == "ppo":
            params["batch_size"] = min(params["batch_size"], params["n_steps"] * venv.num_envs)
        self.model = algo("CnnPolicy", venv, seed=self.seed, device="cpu", verbose=0,
                          tensorboard_log=str(self.tensorboard_dir) if self.tensorboard_dir
                          else None, **params)
        self.model.learn(total_timesteps=budget, callback=_sb3_callback(on_step, budget),
                         tb_log_name=self.kind)

    def failure_likelihood(self, observations: np.ndarray) -> np.ndarray:
        import torch

        if self.model is None:
            raise RuntimeError("failure_likelihood() needs a trained agent: call run() first")
        obs, _ = self.model.policy.obs_to_tensor(np.asarray(observations))
        with torch.no_grad():
            probs = self.model.policy.get_distribution(obs).distribution.probs
        p = probs.mean(dim=0).cpu().numpy().astype(float)
        return p / p.sum()

    def save(self, path: Path) -> Path:
        if self.model is None:
            raise RuntimeError("save() needs a trained agent: call run() first")
        path = Path(path).with_suffix(".zip")
        self.model.save(path)
        return path


class UniformAgent(BanditAgent):
    """Round-robin sweep over the catalog: agent step ``k`` applies perturbation ``k mod N`` of
    the catalog order, or of one seeded random order when ``shuffle`` (one rollout per member
    per pass either way)."""

    kind = "uniform"

    def __init__(self, n_actions: int, seed: int, shuffle: bool = False) -> None:
        super().__init__(n_actions, seed)
        self.order = self.rng.permutation(n_actions) if shuffle else np.arange(n_actions)

    def choose(self, agent_step: int) -> int:
        return int(self.order[agent_step % self.n_actions])


class RandomAgent(BanditAgent):
    """A uniformly random perturbation per rollout."""

    kind = "random"

    def choose(self, agent_step: int) -> int:
        return int(self.rng.integers(self.n_actions))


class ThompsonAgent(BanditAgent):
    """Thompson sampling: apply the perturbation with the largest failure rate drawn from its
    Beta posterior (parallel environments draw independently)."""

    kind = "thompson"

    def choose(self, agent_step: int) -> int:
        draws = self.rng.beta(self.prior_alpha + self.failures,
                              self.prior_beta + self.trials - self.failures)
        return int(np.argmax(draws))


def make_agent(config: AgentConfig, n_actions: int, seed: int,
               tensorboard_dir: Path | None = None, *, members: Sequence[Any] | None = None,
               threshold: float = 0.5, confidence: float = 0.95) -> Agent:
    """Build the agent a campaign config asks for.

    :param config: the validated agent config.
    :param n_actions: catalog size.
    :param seed: the campaign seed.
    :param tensorboard_dir: training curves of RL agents go there.
    :param members: each member's (family, level) pairs, for the ``factor`` agent (None: each
        member its own family).
    :param threshold: failure-mode threshold (deciding agents).
    :param confidence: the campaign's confidence (deciding agents).
    """
    from robomd_diagnoser.search_agents import FactorAgent, GoodArmAgent

    if config.type in ("ppo", "a2c"):
        return RLAgent(config.type, config.params, seed, tensorboard_dir, threshold, confidence)
    if config.type == "uniform":
        return UniformAgent(n_actions, seed, **config.params)
    if config.type == "random":
        return RandomAgent(n_actions, seed)
    if config.type == "thompson":
        return ThompsonAgent(n_actions, seed, **config.params)
    if config.type == "good_arm":
        return GoodArmAgent(n_actions, seed, threshold, confidence)
    if config.type == "factor":
        return FactorAgent(n_actions, seed, members, threshold, confidence, **config.params)
    raise ValueError(f"unknown agent type {config.type!r}")
