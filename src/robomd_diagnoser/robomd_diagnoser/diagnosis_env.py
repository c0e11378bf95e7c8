"""The discrete diagnosis MDP of Algorithm 1 as a Gymnasium environment over any World.

- Observation: the scene camera image before a rollout (HxWx3 uint8): the nominal scene at the
  start of an episode, afterwards the scene with the accumulated perturbations.
- Action: ``Discrete(len(catalog))``, an index into the catalog.
- Step: the chosen perturbation is added to the accumulated set and the policy under test is
  rolled out once in that scene. A failure gives ``rewards.failure`` and ends the episode (the
  next episode starts from the nominal scene: the set is cleared). A success gives
  ``-rewards.success_per_step * t`` (``t``: the rollout's control steps) and keeps the set. An
  episode also ends after ``max_perturbations`` steps.
- A rollout that does not complete (aborted, cancelled, unavailable) is never a failure: it is
  stored, then re-run with a fresh seed up to ``max_retries`` times; if no attempt completes the
  step gives reward 0 and leaves the state unchanged (the perturbation is not added).

Every rollout attempt is handed to ``on_rollout`` as a :class:`RolloutRecord` the moment it ends
(the campaign commits it to the store), under the key ``agent/<agent step>/<attempt>``. Agent
steps are numbered across parallel environments as ``local_step * n_envs + env_index``, which is
how Stable-Baselines3 counts timesteps.

Resume: ``replay`` maps keys to stored records. A step whose record is stored is not rolled out
again; its stored outcome is used instead, and the observation comes from ``obs_cache`` (written
before each record is stored), so a seeded agent retraces its interrupted trajectory exactly.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from robomd_diagnoser.config import RewardConfig
from robomd_diagnoser.jobs import RolloutJob, run_job
from robomd_diagnoser.store import RolloutRecord
from robomd_diagnoser.world import PerturbationUnavailable, RolloutStatus, World, WorldError

log = logging.getLogger(__name__)

KEY_PREFIX = "agent/"


class ReplayError(RuntimeError):
    """A stored rollout does not match what the resumed agent asked for."""


def rollout_key(agent_step: int, attempt: int) -> str:
    """Store key of one rollout attempt of an agent step.

    :param agent_step: the agent step (global across parallel environments).
    :param attempt: 0 for the first try, then 1, 2... for retries of an aborted rollout.
    """
    return f"{KEY_PREFIX}{agent_step:06d}/{attempt}"


def rollout_seed(seed: int, env_index: int, episode: int, position: int, attempt: int) -> int:
    """The scene and rollout seed of an attempt, derived so that a resumed campaign reuses it.

    :param seed: the environment's base seed (the campaign seed, or the seed given to reset()).
    :param env_index: the environment's index among parallel ones.
    :param episode: episodes since the base seed was set.
    :param position: the step's position in its episode.
    :param attempt: the attempt number; -1 for the nominal scene shown at the episode start.
    """
    entropy = [seed, env_index, episode, position, attempt + 1]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


class ObservationCache:
    """Observations shown to the agent, one ``.npy`` file each (atomic writes), so a resumed
    campaign shows the agent the very same pixels.

    Names: ``<step>`` is the pre-rollout image of agent step ``<step>``'s rollout (the next state
    after a success); ``<step>_start`` is the nominal image that starts an episode at that step.

    :param directory: where the files live (created).
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def get(self, name: str) -> np.ndarray | None:
        """The cached observation ``name``, or None."""
        path = self.directory / f"{name}.npy"
        return np.load(path, allow_pickle=False) if path.is_file() else None

    def put(self, name: str, obs: np.ndarray) -> None:
        """Cache observation ``name``."""
        path = self.directory / f"{name}.npy"
        tmp = self.directory / f"{name}.{os.getpid()}.tmp"
        with tmp.open("wb") as f:
            np.save(f, obs, allow_pickle=False)
        os.replace(tmp, path)


class DiagnosisEnv(gym.Env):
    """Algorithm 1's MDP (see the module doc).

    :param world: the world to perturb and roll out in.
    :param horizon: control steps per rollout.
    :param rewards: reward constants (default :class:`RewardConfig`).
    :param max_perturbations: steps per episode at most (the cap on the accumulated set).
    :param seed: base seed; rollout seeds derive from it (:func:`rollout_seed`); ``reset(seed=s)``
        makes ``s`` the base seed and restarts the episode count, as Gymnasium expects.
    :param max_retries: re-runs of a rollout that did not complete.
    :param env_index: this environment's index among ``n_envs`` parallel ones.
    :param n_envs: number of parallel environments.
    :param on_rollout: called with each finished rollout attempt's record.
    :param replay: stored records by key, used instead of rolling out again.
    :param obs_cache: observation cache (a replay then shows the same pixels without rendering).
    :param video_dir: keep every rollout's video there (the world must be able to record).
    :param store_dir: directory video paths in records are relative to.
    """

    metadata = {"render_modes": []}

    def __init__(self, world: World, *, horizon: int, rewards: RewardConfig | None = None,
                 max_perturbations: int = 3, seed: int = 0, max_retries: int = 2,
                 env_index: int = 0, n_envs: int = 1,
                 on_rollout: Callable[[RolloutRecord], None] | None = None,
                 replay: Mapping[str, RolloutRecord] | None = None,
                 obs_cache: ObservationCache | None = None, video_dir: Path | None = None,
                 store_dir: Path | None = None) -> None:
        super().__init__()
        if not 0 <= env_index < n_envs:
            raise ValueError(f"env_index must be in [0, n_envs), got {env_index} of {n_envs}")
        if max_perturbations < 1:
            raise ValueError(f"max_perturbations must be >= 1, got {max_perturbations}")
        self.world = world
        self.catalog = world.catalog
        self.horizon = horizon
        self.rewards = rewards or RewardConfig()
        self.max_perturbations = max_perturbations
        self.seed = seed
        self.max_retries = max_retries
        self.env_index = env_index
        self.n_envs = n_envs
        self.on_rollout = on_rollout
        self.replay = dict(replay or {})
        self.obs_cache = obs_cache
        self.video_dir = video_dir
        self.store_dir = store_dir or Path.cwd()
        world.reset(rollout_seed(seed, env_index, 0, 0, -1))
        world.apply(())
        probe = np.asarray(world.observe())
        if probe.ndim != 3 or probe.shape[2] != 3 or probe.dtype != np.uint8:
            raise ValueError(f"{type(world).__name__}.observe() must return HxWx3 uint8, got "
                             f"{probe.dtype} {probe.shape}")
        self.observation_space = gym.spaces.Box(0, 255, probe.shape, np.uint8)
        self.action_space = gym.spaces.Discrete(len(self.catalog))
        self._local_step = 0
        self._episode = -1
        self._applied: tuple[str, ...] = ()
        self._episode_len = 0
        self._obs = probe

    @property
    def agent_step(self) -> int:
        """The global index of this environment's next step."""
        return self._local_step * self.n_envs + self.env_index

    def _observation(self, perturbations: tuple[str, ...], seed: int) -> np.ndarray:
        failures = 0
        while True:
            try:
                self.world.reset(seed)
                self.world.apply(perturbations)
                return np.asarray(self.world.observe(), dtype=np.uint8)
            except PerturbationUnavailable:
                raise
            except WorldError as exc:  # a fault of the world, not of the policy: try again
                failures += 1
                if failures > self.max_retries:
                    raise
                log.warning("scene %s not shown (%s); retrying", list(perturbations) or
                            "nominal", exc)
                time.sleep(1.0)

    def nominal_observation(self, seed: int) -> np.ndarray:
        """The nominal scene's image for ``seed`` (where P_fail is read, Eq. 3).

        :param seed: scene seed.
        """
        return self._observation((), seed)

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode from the nominal scene."""
        super().reset(seed=seed)
        if seed is not None:
            self.seed, self._episode = seed, -1
        self._episode += 1
        self._applied = ()
        self._episode_len = 0
        step = self.agent_step
        name = f"{step:06d}_start"
        cached = self.obs_cache.get(name) if self.obs_cache else None
        if cached is None:
            cached = self._observation((), self._seed(-1))
            if self.obs_cache:
                self.obs_cache.put(name, cached)
        self._obs = cached
        return self._obs.copy(), {}

    def _seed(self, attempt: int) -> int:
        return rollout_seed(self.seed, self.env_index, self._episode, self._episode_len, attempt)

    def _attempt(self, perturbations: tuple[str, ...], step: int,
                 attempt: int) -> tuple[RolloutRecord, np.ndarray | None, bool]:
        """Run (or replay) one attempt; returns the record, the pre-rollout image (None when
        replayed and not cached) and whether it was replayed."""
        key = rollout_key(step, attempt)
        stored = self.replay.get(key)
        if stored is not None:
            if tuple(stored.perturbations) != perturbations:
                raise ReplayError(
                    f"stored rollout {key} applied {list(stored.perturbations)} but the resumed "
                    f"agent asked for {list(perturbations)}: the campaign settings or software "
                    "changed since it started; resume with the same versions or use a new --out")
            cached = self.obs_cache.get(f"{step:06d}") if self.obs_cache else None
            return stored, cached, True
        video = (self.video_dir / f"{step:06d}_{attempt}.mp4") if self.video_dir else None
        job = RolloutJob(key, perturbations, self._seed(attempt),
                         self.horizon, video=str(video) if video else None, observe=True,
                         agent_step=step)
        image = None
        try:
            result = run_job(self.world, job)
            record, image = result.to_record(self.store_dir), result.image
        except WorldError as exc:  # the scene or the robot failed, not the policy
            status = (RolloutStatus.UNAVAILABLE if isinstance(exc, PerturbationUnavailable)
                      else RolloutStatus.ABORTED)
            record = RolloutRecord(key, perturbations, job.seed, status.value, None, 0, 0.0,
                                   agent_step=step, reason=str(exc))
        if self.obs_cache and record.success:
            self.obs_cache.put(f"{step:06d}", image)
        if self.on_rollout is not None:
            self.on_rollout(record)
        return record, image, False

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Add perturbation ``action`` and roll out (see the module doc)."""
        if not self.action_space.contains(int(action)):
            raise ValueError(f"action {action!r} is not in 0..{len(self.catalog) - 1}")
        name = self.catalog[int(action)].name
        perts = self._applied + (name,)
        step = self.agent_step
        record = None
        image = None
        replayed = False
        for attempt in range(self.max_retries + 1):
            record, image, replayed = self._attempt(perts, step, attempt)
            if record.status == RolloutStatus.COMPLETED.value:
                break
            log.warning("rollout %s %s (%s); not a policy failure, %s", record.key,
                        record.status, record.reason or "no reason given",
                        "retrying" if attempt < self.max_retries else "skipping this step")
        self._local_step += 1
        self._episode_len += 1
        info = {"perturbations": list(perts), "status": record.status,
                "success": record.success, "steps": record.steps, "replayed": replayed}
        if record.status != RolloutStatus.COMPLETED.value:
            reward, failed = 0.0, False
        elif record.success:
            reward, failed = -self.rewards.success_per_step * record.steps, False
            self._applied = perts
            if image is None:  # replayed without a cached image: render it again
                image = self._observation(perts, record.seed)
                if self.obs_cache:
                    self.obs_cache.put(f"{step:06d}", image)
            self._obs = image
        else:
            reward, failed = self.rewards.failure, True
        terminated = failed or self._episode_len >= self.max_perturbations
        return self._obs.copy(), float(reward), terminated, False, info

    def close(self) -> None:
        """Close the world."""
        self.world.close()
