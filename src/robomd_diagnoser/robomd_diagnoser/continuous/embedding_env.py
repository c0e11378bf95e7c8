"""Algorithm 2's environment: PPO acts in the embedding space, each action snaps to the nearest
known embedding, and that embedding's recorded outcome is the step's outcome (no rollouts).

Coordinates: actions and observations are *scaled* embeddings ``e / s`` with ``s`` the RMS of E's
coordinates (``1 / sqrt(D)`` for unit-norm embeddings), so that SB3's initial Gaussian (unit
standard deviation) reaches E instead of missing it by orders of magnitude. They are not centred:
every embedding then has the same norm, so the Gaussian's log density (Eq. 4) differs between two
embeddings only through their alignment with the policy's mean. Centring on E's mean made the
density also reward closeness to that mean, i.e. to the majority outcome (success), and ranked the
agent's own training perturbations below chance (measured in docs/continuous.md).

- observation: the current state, a scaled embedding: the nominal scene's embedding at the start
  and after a failure, the snapped embedding after a success (accumulation, Algorithm 2 line 11).
- action: ``Box(-b, b, (512,))`` in scaled coordinates; ``b`` covers E with a 25% margin.
- step: snap to the nearest known embedding ``e*`` (Euclidean); its rollout's outcome decides.
- reward (Eq. 2): on failure ``C_failure / (penalty + 1) - k * N(a)``, on success
  ``-C_success / (horizon * (penalty + 1))``; ``penalty = distance_weight * ||a - e*|| / sqrt(D)``
  (the RMS per-coordinate distance in scaled coordinates, O(1) near E), ``N(a)`` the number of
  immediately preceding steps in the episode that snapped to the same perturbation set and
  ``horizon`` the rollouts' step limit. The paper's code uses ``10000 / (penalty + 1) - 100 *
  repeats``; we keep the ratio ``k / C_failure = 0.01`` at rewards of order 1 (as the discrete
  agent does), with ``C_success = 1``.
- episodes have a fixed length (Algorithm 2's N steps); a failure resets the state, not the
  episode, so the repeat penalty can discourage re-picking the same failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np


def nearest(points: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index and Euclidean distance of the nearest point for each query.

    :param points: (N, D) known points.
    :param queries: (M, D) or (D,) query points.
    :returns: (M,) indices and (M,) distances (scalars' arrays of shape (1,) for one query).
    """
    q = np.atleast_2d(np.asarray(queries, dtype=np.float64))
    p = np.asarray(points, dtype=np.float64)
    sq = (q * q).sum(1)[:, None] - 2.0 * q @ p.T + (p * p).sum(1)[None, :]
    idx = sq.argmin(axis=1)
    return idx, np.sqrt(np.maximum(sq[np.arange(len(q)), idx], 0.0))


@dataclass
class KnownEmbeddings:
    """The known embeddings E (one per recorded rollout) and what queries need.

    :param embeddings: (N, D) unit-norm embeddings.
    :param success: (N,) each rollout's outcome.
    :param names: each rollout's perturbation set (``nominal``, ``a``, ``a+b``).
    :param p_success: (N,) the success head's prediction.
    :param nominal_images: (K, H, W, 3) nominal scene images queries embed texts with.
    :param horizon: the rollouts' step limit (Eq. 2).
    :param nominal: (D,) the nominal scene's embedding (the state an episode starts from).
    :param reliability_threshold: distance beyond which a query is flagged as far from E.
    """

    embeddings: np.ndarray
    success: np.ndarray
    names: list[str]
    p_success: np.ndarray
    nominal_images: np.ndarray
    horizon: int
    nominal: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    reliability_threshold: float = float("inf")

    def __post_init__(self) -> None:
        n = len(self.embeddings)
        if not (len(self.success) == len(self.names) == len(self.p_success) == n) or n == 0:
            raise ValueError(f"KnownEmbeddings: {n} embeddings but {len(self.success)} outcomes, "
                             f"{len(self.names)} names, {len(self.p_success)} predictions")

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    @property
    def scale(self) -> float:
        """``s``: the RMS of E's coordinates."""
        rms = float(np.sqrt((self.embeddings.astype(np.float64) ** 2).sum(1).mean() / self.dim))
        return rms if rms > 0 else 1.0

    def to_action(self, emb: np.ndarray) -> np.ndarray:
        """Embeddings -> scaled coordinates (see the module doc)."""
        return (np.asarray(emb) / self.scale).astype(np.float32)

    def nearest(self, emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest known embedding of each embedding (unscaled): indices and distances."""
        return nearest(self.embeddings, emb)

    def save(self, path: str | Path) -> Path:
        """Write to an ``.npz`` (no pickled objects)."""
        path = Path(path)
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez(tmp, embeddings=self.embeddings, success=self.success,
                 names=np.asarray(self.names, dtype=np.str_), p_success=self.p_success,
                 nominal_images=self.nominal_images, horizon=np.int64(self.horizon),
                 nominal=self.nominal, reliability_threshold=np.float64(
                     self.reliability_threshold))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> KnownEmbeddings:
        """Read what :meth:`save` wrote (``allow_pickle=False``).

        :raises FileNotFoundError: naming the command that writes it.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no known embeddings at {path}; `robomd embed train` "
                                    "writes them")
        with np.load(path, allow_pickle=False) as d:
            return cls(d["embeddings"], d["success"].astype(bool), [str(n) for n in d["names"]],
                       d["p_success"], d["nominal_images"], int(d["horizon"]), d["nominal"],
                       float(d["reliability_threshold"]))


@dataclass(frozen=True)
class ContinuousReward:
    """Eq. 2's constants (see the module doc).

    :param failure: C_failure.
    :param success: C_success.
    :param repeat: k, per immediately repeated perturbation.
    :param distance_weight: multiplies the RMS distance to make the penalty.
    """

    failure: float = 1.0
    success: float = 1.0
    repeat: float = 0.01
    distance_weight: float = 1.0

    def penalty(self, distance: float, dim: int) -> float:
        """The distance penalty of an action ``distance`` away from its snapped embedding."""
        return self.distance_weight * distance / np.sqrt(dim)

    def __call__(self, failed: bool, penalty: float, repeats: int, horizon: int) -> float:
        """Eq. 2.

        :param failed: the snapped embedding's rollout failed.
        :param penalty: the distance penalty.
        :param repeats: N(a).
        :param horizon: the rollouts' step limit.
        """
        if failed:
            return self.failure / (penalty + 1.0) - self.repeat * repeats
        return -self.success / (horizon * (penalty + 1.0))


class EmbeddingEnv(gym.Env):
    """Algorithm 2's MDP over known embeddings (see the module doc).

    :param known: the known embeddings.
    :param reward: Eq. 2's constants.
    :param episode_length: steps per episode.
    """

    metadata = {"render_modes": []}

    def __init__(self, known: KnownEmbeddings, reward: ContinuousReward | None = None,
                 episode_length: int = 8) -> None:
        super().__init__()
        if episode_length < 1:
            raise ValueError(f"episode_length must be >= 1, got {episode_length}")
        if known.nominal.shape != (known.dim,):
            raise ValueError("KnownEmbeddings.nominal is not set; build it with build_known()")
        self.known = known
        self.reward = reward or ContinuousReward()
        self.episode_length = episode_length
        self._points = known.to_action(known.embeddings)
        self._start = known.to_action(known.nominal)
        bound = float(np.abs(self._points).max()) * 1.25
        self.action_space = gym.spaces.Box(-bound, bound, (known.dim,), np.float32)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (known.dim,), np.float32)
        self._state = self._start
        self._prev: str | None = None
        self._streak = 0
        self._t = 0

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start at the nominal scene."""
        super().reset(seed=seed)
        self._state, self._prev, self._streak, self._t = self._start, None, 0, 0
        return self._state.copy(), {}

    def snap(self, action: np.ndarray) -> tuple[int, float]:
        """Index of the known embedding nearest to ``action`` (scaled) and the distance."""
        idx, dist = nearest(self._points, action)
        return int(idx[0]), float(dist[0])

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Snap, read the outcome, reward with Eq. 2 (see the module doc)."""
        idx, dist = self.snap(np.asarray(action, dtype=np.float32))
        name = self.known.names[idx]
        self._streak = self._streak + 1 if name == self._prev else 0
        self._prev = name
        failed = not bool(self.known.success[idx])
        penalty = self.reward.penalty(dist, self.known.dim)
        reward = self.reward(failed, penalty, self._streak, self.known.horizon)
        self._state = self._start if failed else self._points[idx]
        self._t += 1
        info = {"index": idx, "name": name, "failed": failed, "distance": dist,
                "repeats": self._streak}
        return self._state.copy(), float(reward), False, self._t >= self.episode_length, info
