"""Rollout jobs: what to run (:class:`RolloutJob`), what it produced (:class:`JobResult`) and
how one world runs it (:func:`run_job`). Job pools (:mod:`robomd_diagnoser.pools`) run many."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robomd_diagnoser.policy import PolicyError
from robomd_diagnoser.store import RolloutRecord
from robomd_diagnoser.world import (
    Outcome,
    PerturbationUnavailable,
    RolloutResult,
    RolloutStatus,
    World,
    WorldError,
)

WorldFactory = Callable[[], World]
"""A picklable zero-argument callable that builds a world (called once per worker process)."""

#: Environment of worker processes: one math thread each, so workers do not fight over cores.
WORKER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


class RolloutJobError(RuntimeError):
    """A job raised inside a world; the message names the job key and carries the traceback."""


@dataclass(frozen=True)
class RolloutJob:
    """One rollout to run.

    :param key: the store key the result will be saved under.
    :param perturbations: cumulative perturbation names to apply after the seeded reset.
    :param seed: seed for the scene reset and the rollout.
    :param max_steps: step limit of the rollout.
    :param video: file to write the rollout's MP4 to (parent directories are created), or None.
    :param observe: also return the camera image of the perturbed scene before the rollout.
    :param agent_step: passed through to the stored record.
    """

    key: str
    perturbations: tuple[str, ...]
    seed: int
    max_steps: int
    video: str | None = None
    observe: bool = False
    agent_step: int | None = None


@dataclass(frozen=True)
class JobResult:
    """What running a :class:`RolloutJob` produced.

    :param job: the job.
    :param result: how the rollout ended.
    :param outcome: the judgement; None unless the rollout completed.
    :param image: the pre-rollout camera image if ``job.observe`` was set.
    :param worker: process id of the process that ran it.
    :param cpu: CPU seconds its process spent on the job (all threads), for benchmarks.
    """

    job: RolloutJob
    result: RolloutResult
    outcome: Outcome | None
    image: np.ndarray | None = field(default=None, repr=False)
    worker: int = 0
    cpu: float = 0.0

    def to_record(self, store_dir: str | Path) -> RolloutRecord:
        """The :class:`RolloutRecord` to store, with the video path relative to ``store_dir``.

        :param store_dir: the store's directory (:attr:`RolloutStore.directory`).
        """
        video = os.path.relpath(self.job.video, store_dir) if self.job.video else None
        reason = self.outcome.reason if self.outcome and self.outcome.reason else self.result.reason
        return RolloutRecord(key=self.job.key, perturbations=self.job.perturbations,
                             seed=self.job.seed, status=self.result.status.value,
                             success=self.outcome.success if self.outcome else None,
                             steps=self.result.steps, duration=self.result.duration,
                             agent_step=self.job.agent_step, reason=reason, video=video)


def write_video(frames: Iterable[np.ndarray], path: str | Path, fps: float) -> None:
    """Encode HxWx3 uint8 frames as an H.264 MP4 (imageio-ffmpeg).

    :param frames: the frames, upright.
    :param path: output file; parent directories are created.
    :param fps: frames per second (the world's control frequency).
    """
    import imageio.v2 as imageio  # optional dependency: only needed for videos

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # macro_block_size=1 keeps small frames (e.g. 84x84) at their size instead of padding them.
    with imageio.get_writer(path, fps=fps, codec="libx264", macro_block_size=1,
                            ffmpeg_log_level="error") as writer:
        for frame in frames:
            writer.append_data(np.asarray(frame, dtype=np.uint8))


def run_job(world: World, job: RolloutJob) -> JobResult:
    """Run one job in ``world``: seeded reset, apply, (observe), execute, judge, (video).

    A :class:`~robomd_diagnoser.world.WorldError` (the scene or robot failed, not the policy)
    becomes an unjudged result: ``unavailable`` for
    :class:`~robomd_diagnoser.world.PerturbationUnavailable`, else ``aborted``. A
    :class:`~robomd_diagnoser.policy.PolicyError` during the rollout (an unusable action, e.g. a
    non-finite one) aborts that rollout with the error as its reason, as over ROS 2: it is
    neither judged a failure nor does it stop the run.
    A world that records frames exposes a boolean ``record`` attribute and fills ``last_frames``
    during :meth:`World.execute`; asking a video of a world without them raises.

    :param world: the world to run in.
    :param job: the job.
    :raises RuntimeError: if a video is asked of a world that cannot record.
    """
    if job.video and not hasattr(world, "record"):
        raise RuntimeError(f"job {job.key}: a video was asked but {type(world).__name__} cannot "
                           "record frames (no 'record' attribute); run without videos")
    start, cpu = time.monotonic(), time.process_time()
    image = None
    try:
        world.reset(job.seed)
        world.apply(job.perturbations)
        if job.observe:
            image = world.observe()
        if job.video:
            world.record = True
        try:
            result = world.execute(job.max_steps, job.seed)
        except PolicyError as exc:  # e.g. one non-finite action: this rollout ends, not the run
            result = RolloutResult(RolloutStatus.ABORTED, 0, time.monotonic() - start,
                                   f"policy error: {exc}")
        finally:
            if job.video:
                world.record = False
    except WorldError as exc:  # the scene or the robot failed, not the policy
        status = (RolloutStatus.UNAVAILABLE if isinstance(exc, PerturbationUnavailable)
                  else RolloutStatus.ABORTED)
        return JobResult(job, RolloutResult(status, 0, time.monotonic() - start, str(exc)), None,
                         image, os.getpid(), time.process_time() - cpu)
    outcome = world.judge() if result.status == RolloutStatus.COMPLETED else None
    frames = world.last_frames if job.video else []
    if frames:  # a remote world may have written its video where this machine cannot read it
        write_video(frames, job.video, getattr(world, "control_freq", 20))
    return JobResult(job, result, outcome, image, os.getpid(), time.process_time() - cpu)
