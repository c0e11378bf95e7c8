"""State demonstrations from the scripted expert, collected without rendering.

Same recipe as :mod:`robomd_sim_bridge.demos` (AR(1) noise on the executed position command, the
expert's noise-free action as the label, successful episodes only, seeds tried in order so a
batch is reproducible and resumable), but each step records the low-dimensional observation a
state policy sees (:data:`robomd_diagnoser.learning.state_bc.STATE_KEYS`) instead of an image,
and the camera is never rendered, so an episode costs physics only (well under a second).
Episodes go to ``<out>/<scene>_s<seed>.npz`` (:func:`save_state_demo`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from robomd_diagnoser.catalog import load_catalog
from robomd_diagnoser.learning.state_bc import STATE_KEYS, save_state_demo
from robomd_diagnoser.policy import Observation, as_action
from robomd_sim_bridge.demos import ATTEMPTS_PER_EPISODE, NOMINAL, NoisyRecorder


class StateRecorder(NoisyRecorder):
    """:class:`NoisyRecorder` that records the state keys and needs no camera."""

    uses_image = False

    def act(self, obs: Observation) -> np.ndarray:
        clean = as_action(self.expert.act(obs), "scripted expert")
        self.steps.append(tuple(np.asarray(obs[k], np.float32).reshape(n)
                                for k, n in STATE_KEYS.items()) + (clean.astype(np.float32),))
        return self.noisy(clean)

    def arrays(self) -> dict[str, np.ndarray]:
        """The recorded episode as per-step arrays."""
        cols = list(zip(*self.steps, strict=True))
        return {k: np.stack(c) for k, c in zip((*STATE_KEYS, "action"), cols, strict=True)}


@dataclass
class StateDemoSummary:
    """What :func:`collect_state_demos` left on disk.

    :param files: the kept episode files, by seed.
    :param frames: control steps in them.
    :param attempts: seeds attempted by this call.
    :param successes: of those, how many the expert completed.
    """

    files: list[Path]
    frames: int
    attempts: int
    successes: int


def collect_state_demos(catalog: str | Path, out: str | Path, episodes: int, *,
                        perturbations: tuple[str, ...] = (), noise: float = 0.2,
                        horizon: int = 150, seed: int = 0, robot: str = "UR5e",
                        log: Callable[[str], None] = print) -> StateDemoSummary:
    """Collect ``episodes`` successful noisy-expert state episodes into ``out`` (resumable).

    :param catalog: catalog YAML (its task picks the scene).
    :param out: output directory.
    :param episodes: successful episodes wanted.
    :param perturbations: cumulative perturbations applied to every episode.
    :param noise: stationary std of the executed position-command noise.
    :param horizon: step limit per episode.
    :param seed: first seed tried; an existing ``<scene>_s<seed>.npz`` is kept, not re-run.
    :param robot: robosuite robot.
    :param log: receives one line per attempted seed.
    """
    from robomd_sim_bridge.experts import make_expert
    from robomd_sim_bridge.world import RobosuiteWorld

    out = Path(out)
    scene = "+".join(perturbations) or NOMINAL
    world = RobosuiteWorld(load_catalog(catalog), robot=robot, horizon=horizon)
    recorder = StateRecorder(make_expert(world), noise)
    world.policy = recorder
    files: list[Path] = []
    frames = attempts = successes = 0
    try:
        s = seed
        while len(files) < episodes and s < seed + ATTEMPTS_PER_EPISODE * episodes + 10:
            path = out / f"{scene}_s{s:05d}.npz"
            if path.is_file():
                with np.load(path) as z:
                    frames += len(z["action"])
                files.append(path)
                s += 1
                continue
            recorder.seed(s)
            world.reset(s)
            world.apply(perturbations)
            result = world.execute(horizon, s)
            attempts += 1
            ok = world.judge().success
            if ok:
                successes += 1
                save_state_demo(path, recorder.arrays(), seed=s, noise=noise)
                files.append(path)
                frames += result.steps
            log(f"seed {s}: {'saved' if ok else 'expert failed'} ({result.steps} steps); "
                f"{len(files)}/{episodes}")
            s += 1
    finally:
        world.close()
    return StateDemoSummary(files, frames, attempts, successes)
