"""PPO (Stable-Baselines3) in the embedding space, and its density at the nominal scene.

The agent is SB3's ``MlpPolicy``: a diagonal Gaussian over the 512 scaled coordinates whose mean
is an MLP of the state and whose log standard deviations are free parameters. PPO defaults follow
the paper (lr 3e-4, gamma 0.99, clip 0.2, 10 epochs, batch 64). Saved as a plain state dict read
back with ``weights_only=True`` (SB3's own zips unpickle on load).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robomd_diagnoser.continuous.embedding_env import (
    ContinuousReward,
    EmbeddingEnv,
    KnownEmbeddings,
)

#: The action coordinates agents are trained in (see
#: :mod:`~robomd_diagnoser.continuous.embedding_env`); saved with each agent so that one trained
#: in other coordinates is not reused.
COORDINATES = "e/s"


@dataclass(frozen=True)
class AgentSettings:
    """PPO in the embedding space.

    :param timesteps: environment steps to train for (cheap: no rollouts).
    :param episode_length: steps per episode.
    :param n_steps: steps per PPO update.
    :param batch_size: PPO minibatch.
    :param n_epochs: PPO epochs per update.
    :param learning_rate: Adam learning rate.
    :param gamma: discount.
    :param clip_range: PPO clip.
    :param hidden: widths of the policy and value MLPs.
    :param seed: seeds the networks and the action sampling.
    """

    timesteps: int = 8192
    episode_length: int = 8
    n_steps: int = 512
    batch_size: int = 64
    n_epochs: int = 10
    learning_rate: float = 3e-4
    gamma: float = 0.99
    clip_range: float = 0.2
    hidden: tuple[int, ...] = (256, 256)
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("timesteps", "episode_length", "n_steps", "batch_size", "n_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"agent setting {name} must be >= 1, got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["hidden"] = list(self.hidden)
        return data


def _ppo(known: KnownEmbeddings, settings: AgentSettings, reward: ContinuousReward) -> Any:
    from stable_baselines3 import PPO

    env = EmbeddingEnv(known, reward, settings.episode_length)
    return PPO("MlpPolicy", env, learning_rate=settings.learning_rate, n_steps=settings.n_steps,
               batch_size=settings.batch_size, n_epochs=settings.n_epochs, gamma=settings.gamma,
               clip_range=settings.clip_range, seed=settings.seed, device="cpu", verbose=0,
               policy_kwargs={"net_arch": list(settings.hidden)})


class EmbeddingAgent:
    """A PPO policy over the embedding space of ``known``.

    :param known: the known embeddings it acts among.
    :param settings: its settings.
    :param reward: Eq. 2's constants it was trained with.
    :param model: the SB3 PPO model.
    """

    def __init__(self, known: KnownEmbeddings, settings: AgentSettings,
                 reward: ContinuousReward, model: Any) -> None:
        self.known = known
        self.settings = settings
        self.reward = reward
        self.model = model

    @classmethod
    def train(cls, known: KnownEmbeddings, settings: AgentSettings | None = None,
              reward: ContinuousReward | None = None, progress: bool = False) -> EmbeddingAgent:
        """Train PPO on :class:`EmbeddingEnv` (deterministic for a fixed seed).

        :param known: the known embeddings.
        :param settings: PPO settings (defaults: :class:`AgentSettings`).
        :param reward: Eq. 2's constants (defaults: :class:`ContinuousReward`).
        :param progress: show SB3's progress bar.
        """
        settings = settings or AgentSettings()
        reward = reward or ContinuousReward()
        model = _ppo(known, settings, reward)
        model.learn(total_timesteps=settings.timesteps, progress_bar=progress)
        return cls(known, settings, reward, model)

    def log_density(self, embeddings: np.ndarray) -> np.ndarray:
        """``log p_MD(a = e | s_nominal)`` of each (unscaled) embedding; Eq. 4 is a difference.

        :param embeddings: (M, D) embeddings.
        """
        policy = self.model.policy
        obs = torch.from_numpy(self.known.to_action(self.known.nominal)[None, :])
        actions = torch.from_numpy(self.known.to_action(embeddings))
        with torch.no_grad():
            dist = policy.get_distribution(obs.repeat(len(actions), 1))
            return dist.log_prob(actions).numpy().astype(np.float64)

    def failure_share(self, samples: int = 4096, seed: int = 0) -> float:
        """Fraction of actions sampled at the nominal state that snap to a failed rollout.

        :param samples: actions to draw.
        :param seed: seeds the draw.
        """
        policy = self.model.policy
        obs = torch.from_numpy(self.known.to_action(self.known.nominal)[None, :])
        torch.manual_seed(seed)
        with torch.no_grad():
            actions = policy.get_distribution(obs.repeat(samples, 1)).sample().numpy()
        env = EmbeddingEnv(self.known, self.reward, self.settings.episode_length)
        actions = np.clip(actions, env.action_space.low, env.action_space.high)
        idx = [env.snap(a)[0] for a in actions]
        return float(np.mean(~self.known.success[idx]))

    def save(self, path: str | Path) -> Path:
        """Write the policy weights and settings (tensors and plain values only)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save({"settings": self.settings.to_dict(), "reward": asdict(self.reward),
                    "coordinates": COORDINATES, "policy": self.model.policy.state_dict()}, tmp)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path, known: KnownEmbeddings) -> EmbeddingAgent:
        """Read an agent written by :meth:`save` (``weights_only=True``).

        :param path: the file.
        :param known: the known embeddings it was trained on.
        :raises ValueError: if it was trained in other action coordinates (retrain it).
        """
        data = torch.load(Path(path), map_location="cpu", weights_only=True)
        if data.get("coordinates") != COORDINATES:
            raise ValueError(f"{path} was trained in other action coordinates; delete it to "
                             "retrain")
        raw = dict(data["settings"])
        raw["hidden"] = tuple(raw["hidden"])
        settings = AgentSettings(**raw)
        reward = ContinuousReward(**data["reward"])
        model = _ppo(known, settings, reward)
        model.policy.load_state_dict(data["policy"])
        return cls(known, settings, reward, model)
