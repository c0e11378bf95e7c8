"""Demonstrations from the scripted expert, for behaviour cloning and failure-guided fine-tuning.

Each episode runs the expert with temporally correlated Gaussian noise added to its position
commands (so the data covers recoveries from off-path states) while recording, per control step,
the observation a learned policy sees (``image``, ``eef_pos``, ``gripper``) and the expert's
noise-free action as the label. Only successful episodes are kept, one compressed ``.npz`` each
(:func:`robomd_diagnoser.learning.data.save_demo`).

A batch is one scene (nominal, or a cumulative list of perturbations) and lives in
``<out>/<scene>/``: ``<scene>_s<seed>.npz`` files plus ``manifest.json`` (settings and the result of
every attempted seed). Seeds are tried in order and the first N successful ones are kept, so a batch
is reproducible and an interrupted collection resumes where it stopped. Workers are the rollout
executor's processes (:mod:`robomd_diagnoser.pools`), each owning its own world.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robomd_diagnoser.catalog import load_catalog
from robomd_diagnoser.config import PoolConfig
from robomd_diagnoser.jobs import RolloutJob
from robomd_diagnoser.learning.data import save_demo
from robomd_diagnoser.policy import Observation, as_action
from robomd_diagnoser.pools import make_pool
from robomd_diagnoser.world import Outcome, RolloutResult

NOMINAL = "nominal"
#: Correlation of the action noise between consecutive control steps (AR(1), 20 Hz).
NOISE_CORRELATION = 0.9
#: Give up on a batch after this many attempts per requested episode (plus a constant).
ATTEMPTS_PER_EPISODE = 3


class DemoError(RuntimeError):
    """A demonstration batch cannot be collected as asked; the message says why."""


@dataclass(frozen=True)
class DemoSettings:
    """Everything that decides a demonstration episode; a resumed batch must match it.

    :param catalog: path of the catalog YAML.
    :param perturbations: cumulative perturbations applied to every episode of the batch.
    :param noise: stationary std of the executed position-command noise (normalised units).
    :param horizon: step limit per episode.
    :param camera_size: camera resolution in pixels.
    :param robot: robosuite robot name.
    """

    catalog: str
    perturbations: tuple[str, ...] = ()
    noise: float = 0.2
    horizon: int = 150
    camera_size: int = 84
    robot: str = "UR5e"

    @property
    def scene(self) -> str:
        """Directory and file prefix of the batch: ``nominal`` or ``a+b``."""
        return "+".join(self.perturbations) or NOMINAL

    def fingerprint(self) -> dict[str, Any]:
        """The settings as stored in the manifest (the catalog by task, not by path)."""
        d = asdict(self)
        d["task"] = load_catalog(self.catalog).task
        d["perturbations"] = list(self.perturbations)
        del d["catalog"]
        return d


class NoisyRecorder:
    """Wrap the expert: record (observation, clean action), execute the action plus AR(1) noise.

    :param expert: the scripted expert.
    :param noise: stationary std of the noise added to the position command.
    """

    uses_image = True

    def __init__(self, expert: Any, noise: float) -> None:
        self.expert = expert
        self.noise = noise
        self.rng = np.random.default_rng(0)
        self.steps: list[tuple[np.ndarray, ...]] = []
        self._n = np.zeros(3)

    def seed(self, seed: int) -> None:
        """Seed the noise of the next episode."""
        self.rng = np.random.default_rng([seed, 7])

    def reset(self) -> None:
        self.expert.reset()
        self.steps = []
        self._n = self.rng.normal(0.0, self.noise, 3)

    def act(self, obs: Observation) -> np.ndarray:
        clean = as_action(self.expert.act(obs), "scripted expert")
        self.steps.append((np.array(obs["image"], dtype=np.uint8, copy=True),
                           np.asarray(obs["eef_pos"], np.float32).reshape(3),
                           np.asarray(obs["gripper"], np.float32).reshape(1),
                           clean.astype(np.float32)))
        return self.noisy(clean)

    def noisy(self, clean: np.ndarray) -> np.ndarray:
        """The action to execute: ``clean`` with the next AR(1) noise on its position part."""
        rho = NOISE_CORRELATION
        self._n = rho * self._n + math.sqrt(1 - rho * rho) * self.rng.normal(0.0, self.noise, 3)
        executed = clean.copy()
        executed[:3] = np.clip(clean[:3] + self._n, -1.0, 1.0)
        return executed

    def arrays(self) -> dict[str, np.ndarray]:
        """The recorded episode as per-step arrays."""
        cols = list(zip(*self.steps, strict=True))
        return {k: np.stack(c) for k, c in zip(("image", "eef_pos", "gripper", "action"), cols,
                                               strict=True)}


class DemoRecordingWorld:
    """A world whose judge saves the just-executed episode when it succeeded.

    :param world: the simulated world, with :class:`NoisyRecorder` as its policy.
    :param directory: the batch directory.
    :param scene: file prefix.
    """

    def __init__(self, world: Any, directory: Path, scene: str) -> None:
        self.world = world
        self.recorder: NoisyRecorder = world.policy
        self.catalog = world.catalog
        self.directory = directory
        self.scene = scene
        self._seed = 0
        self._perturbations: tuple[str, ...] = ()

    def reset(self, seed: int) -> None:
        self._seed = seed
        self.recorder.seed(seed)
        self.world.reset(seed)

    def apply(self, perturbations: Sequence[str]) -> None:
        self._perturbations = tuple(perturbations)
        self.world.apply(perturbations)

    def observe(self) -> np.ndarray:
        return self.world.observe()

    def execute(self, max_steps: int, seed: int, on_step: Callable | None = None,
                should_stop: Callable[[], bool] | None = None) -> RolloutResult:
        return self.world.execute(max_steps, seed, on_step, should_stop)

    def judge(self) -> Outcome:
        outcome = self.world.judge()
        if outcome.success and self.recorder.steps:
            save_demo(demo_path(self.directory, self.scene, self._seed), self.recorder.arrays(),
                      seed=self._seed, perturbations=np.array(self._perturbations, dtype=str),
                      success=True)
        return outcome

    def close(self) -> None:
        self.world.close()


def demo_path(directory: Path, scene: str, seed: int) -> Path:
    """File of one episode."""
    return directory / f"{scene}_s{seed:05d}.npz"


@dataclass(frozen=True)
class DemoWorldFactory:
    """Picklable recipe for a worker's recording world.

    :param settings: the batch settings.
    :param directory: the batch directory.
    """

    settings: DemoSettings
    directory: str

    def __call__(self) -> DemoRecordingWorld:
        from robomd_sim_bridge.experts import make_expert
        from robomd_sim_bridge.world import RobosuiteWorld

        s = self.settings
        world = RobosuiteWorld(load_catalog(s.catalog), robot=s.robot, camera_size=s.camera_size,
                               horizon=s.horizon)
        world.policy = NoisyRecorder(make_expert(world), s.noise)
        return DemoRecordingWorld(world, Path(self.directory), s.scene)


@dataclass
class DemoSummary:
    """What a :func:`collect_demos` call left on disk.

    :param directory: the batch directory.
    :param saved: successful episodes kept.
    :param frames: control steps in the kept episodes.
    :param attempts: seeds attempted so far in this batch (all calls).
    :param successes: of those, how many the expert completed.
    :param files: the kept episode files, by seed.
    """

    directory: Path
    saved: int
    frames: int
    attempts: int
    successes: int
    files: list[Path] = field(default_factory=list)


def _read_manifest(path: Path, fingerprint: dict[str, Any]) -> dict[str, dict]:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text())
    if data.get("settings") != fingerprint:
        raise DemoError(f"{path.parent} holds demonstrations collected with settings "
                        f"{data.get('settings')}, not {fingerprint}; use another --out")
    return data.get("results", {})


def collect_demos(settings: DemoSettings, out: str | Path, episodes: int, *, workers: int = 1,
                  seed: int = 0, log: Callable[[str], None] = print,
                  executor: PoolConfig | None = None) -> DemoSummary:
    """Collect ``episodes`` successful expert episodes into ``out/<scene>/`` (resumable).

    :param settings: scene, noise and world settings of this batch.
    :param out: root directory of the demonstrations (one sub-directory per scene).
    :param episodes: successful episodes wanted in the batch.
    :param workers: simulator processes.
    :param executor: where the worlds run (default: this machine); on Ray, every node writes
        episodes under ``out``, so ``out`` must be on a file system all nodes share.
    :param seed: first seed tried.
    :param log: receives one line per finished episode.
    :raises DemoError: if the directory holds a batch with other settings.
    """
    directory = Path(out) / settings.scene
    directory.mkdir(parents=True, exist_ok=True)
    manifest = directory / "manifest.json"
    fingerprint = settings.fingerprint()
    results = _read_manifest(manifest, fingerprint)  # str(seed) -> {"success", "steps"}

    def path(s: int) -> Path:
        return demo_path(directory, settings.scene, s)

    def saved() -> list[int]:
        return sorted(int(k) for k, r in results.items()
                      if int(k) >= seed and r["success"] and path(int(k)).is_file())

    limit = seed + ATTEMPTS_PER_EPISODE * episodes + 10

    def jobs() -> Iterator[RolloutJob]:
        s = seed
        while len(saved()) < episodes and s < limit:
            if str(s) not in results or (results[str(s)]["success"] and not path(s).is_file()):
                yield RolloutJob(f"demo/{s}", settings.perturbations, s, settings.horizon)
            s += 1

    if next(jobs(), None) is not None:
        log(f"collect-demos {settings.scene}: {len(saved())}/{episodes} episodes saved, "
            f"running seeds from {seed} with {workers} worker(s)")
        factory = DemoWorldFactory(settings, str(directory))
        with make_pool(factory, workers, executor) as pool:
            while next(jobs(), None) is not None:
                for res in pool.map_unordered(jobs()):
                    success = bool(res.outcome and res.outcome.success)
                    results[str(res.job.seed)] = {"success": success, "steps": res.result.steps}
                    manifest.write_text(json.dumps({"settings": fingerprint,
                                                    "results": results}, indent=1))
                    log(f"seed {res.job.seed}: {'saved' if success else 'expert failed'} "
                        f"({res.result.steps} steps); {len(saved())}/{episodes}")
    keep = saved()[:episodes]
    for s in saved()[episodes:]:  # finished while the batch was completing: not in the first N
        path(s).unlink()
    attempted = [r for k, r in results.items() if int(k) >= seed]
    if len(keep) < episodes:
        log(f"collect-demos {settings.scene}: only {len(keep)} successful episodes in "
            f"{len(attempted)} attempts (limit {limit - seed}); the expert rarely succeeds here")
    return DemoSummary(directory, len(keep), sum(results[str(s)]["steps"] for s in keep),
                       len(attempted), sum(r["success"] for r in attempted),
                       [path(s) for s in keep])
