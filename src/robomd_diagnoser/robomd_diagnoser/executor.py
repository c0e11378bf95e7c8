"""Run rollout jobs in one world or in a pool of worker processes, streaming results back.

A :class:`RolloutJob` says which perturbations to apply, with which seed, for how many steps, and
whether to keep a video. An executor runs jobs and yields a :class:`JobResult` as soon as each
rollout finishes, so the caller can persist it at once (see :mod:`robomd_diagnoser.store`).

Executors implement the small :class:`RolloutExecutor` protocol; campaign code depends only on it,
so a distributed backend (e.g. Ray actors, each owning a world) can be added without changing it.

- :class:`InProcessExecutor` runs jobs one after the other in a world the caller owns.
- :class:`LocalPoolExecutor` starts worker processes (spawn start method); each builds its own
  world once from a picklable factory such as :class:`WorldSpec` and keeps it for every job.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, Self

import numpy as np

from robomd_diagnoser.catalog import load_catalog
from robomd_diagnoser.store import RolloutRecord
from robomd_diagnoser.world import (
    Outcome,
    PerturbationUnavailable,
    RolloutResult,
    RolloutStatus,
    World,
    WorldError,
)

if TYPE_CHECKING:
    from robomd_diagnoser.config import ExecutorConfig

WorldFactory = Callable[[], World]
"""A picklable zero-argument callable that builds a world (called once per worker process)."""

#: Environment of worker processes: one math thread each, so workers do not fight over cores.
_WORKER_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


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
    :class:`~robomd_diagnoser.world.PerturbationUnavailable`, else ``aborted``.
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


class RolloutExecutor(Protocol):
    """Runs rollout jobs and streams results back in completion order."""

    workers: int

    def map_unordered(self, jobs: Iterable[RolloutJob]) -> Iterator[JobResult]:
        """Run every job once; yield each result as soon as it is available.

        Stopping the iteration early (``break``, an exception, Ctrl-C) cancels jobs not started.

        :raises RolloutJobError: if a job raises in its world.
        """

    def close(self) -> None:
        """Stop workers and release their worlds."""


class InProcessExecutor:
    """Run jobs sequentially in one world owned by the caller.

    :param world: the world to run in.
    :param close_world: close the world in :meth:`close` (when the executor was handed ownership).
    """

    workers = 1

    def __init__(self, world: World, close_world: bool = False) -> None:
        self.world = world
        self._close_world = close_world

    def map_unordered(self, jobs: Iterable[RolloutJob]) -> Iterator[JobResult]:
        """Run the jobs in order, yielding each result when it finishes.

        :param jobs: the jobs (consumed lazily).
        """
        for job in jobs:
            try:
                yield run_job(self.world, job)
            except Exception as exc:
                raise RolloutJobError(f"rollout {job.key} failed: {exc}") from exc

    def close(self) -> None:
        if self._close_world:
            self.world.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- worker process side of LocalPoolExecutor -------------------------------------------------
_worker_world: World | None = None
_worker_error: str = ""


def _init_worker(factory: WorldFactory) -> None:
    """Build this worker's world once. Ctrl-C is left to the parent, which stops the workers."""
    global _worker_world, _worker_error
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    try:
        _worker_world = factory()
    except Exception:
        _worker_error = traceback.format_exc()


def _worker_pid(delay: float) -> int:
    time.sleep(delay)  # long enough that one idle worker cannot take every such task at once
    return os.getpid()


def _run_in_worker(job: RolloutJob) -> JobResult:
    if _worker_world is None:
        raise RolloutJobError(f"worker {os.getpid()} could not build its world:\n{_worker_error}")
    try:
        return run_job(_worker_world, job)
    except Exception:
        raise RolloutJobError(f"rollout {job.key} failed in worker {os.getpid()}:\n"
                              f"{traceback.format_exc()}") from None


class LocalPoolExecutor:
    """Run jobs in ``workers`` processes, each owning one world built by ``world_factory``.

    Workers are started on first use and kept until :meth:`close`; each builds its world once.
    At most ``2 * workers`` jobs are queued at a time, so stopping early loses little work.

    :param world_factory: picklable zero-argument callable returning a world (e.g. a
        :class:`WorldSpec`); called in each worker process.
    :param workers: number of worker processes (>= 1).
    """

    def __init__(self, world_factory: WorldFactory, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self._factory = world_factory
        self._pool: cf.ProcessPoolExecutor | None = None

    def start(self) -> None:
        """Start the workers and wait until each has built its world (else done on first use)."""
        self._get_pool()

    def _get_pool(self) -> cf.ProcessPoolExecutor:
        if self._pool is None:
            saved = {k: os.environ.get(k) for k in _WORKER_ENV}
            os.environ.update(_WORKER_ENV)  # inherited by spawned workers at start-up
            try:
                self._pool = cf.ProcessPoolExecutor(
                    self.workers, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_init_worker, initargs=(self._factory,))
                # Spawn every worker now, while the environment is set, and wait until each has
                # built its world (a worker takes tasks only after its initializer ran).
                seen: set[int] = set()
                while len(seen) < self.workers:
                    tasks = [self._pool.submit(_worker_pid, 0.05) for _ in range(self.workers)]
                    seen.update(f.result() for f in tasks)
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
        return self._pool

    def map_unordered(self, jobs: Iterable[RolloutJob]) -> Iterator[JobResult]:
        """Run the jobs across the workers, yielding results in completion order.

        :param jobs: the jobs (consumed lazily, ``2 * workers`` ahead).
        :raises RolloutJobError: if a job raises; the remaining queued jobs are cancelled.
        """
        pool = self._get_pool()
        pending: set[cf.Future] = set()
        todo = iter(jobs)
        try:
            while True:
                while len(pending) < 2 * self.workers:  # pull a job only when there is room
                    job = next(todo, None)
                    if job is None:
                        break
                    pending.add(pool.submit(_run_in_worker, job))
                if not pending:
                    return
                # A short timeout keeps Ctrl-C responsive whichever thread the signal lands on.
                done, pending = cf.wait(pending, timeout=0.5, return_when=cf.FIRST_COMPLETED)
                # Hand out finished rollouts before raising a failed job's error.
                for fut in sorted(done, key=lambda f: f.exception() is not None):
                    yield fut.result()
        except (GeneratorExit, RolloutJobError):
            for fut in pending:
                fut.cancel()
            raise
        except BaseException:  # Ctrl-C or an error in the caller: do not wait for running rollouts
            self._terminate()
            raise

    def _terminate(self) -> None:
        if self._pool is None:
            return
        # Python < 3.14 has no public way to stop busy workers; terminate them directly.
        processes = list(getattr(self._pool, "_processes", {}).values())
        for p in processes:
            p.terminate()
        self._pool.shutdown(wait=True, cancel_futures=True)
        for p in processes:
            p.join()
        self._pool = None

    def close(self) -> None:
        """Stop the workers (their worlds are released with the processes)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc and exc[0] is not None and issubclass(exc[0], KeyboardInterrupt):
            self._terminate()
        self.close()


def make_executor(world_factory: WorldFactory, workers: int | None,
                  executor: ExecutorConfig | None = None,
                  jobs: int | None = None) -> RolloutExecutor:
    """The executor ``executor`` describes (default local): for local, an in-process executor
    for one worker, else a process pool; for ray, a :class:`~robomd_diagnoser.ray_pool.RayPool`.

    :param world_factory: builds the world(s).
    :param workers: number of parallel worlds; None: 1 locally, the cluster's size on Ray.
    :param executor: the backend and its settings.
    :param jobs: the number of jobs to run, if known (no more worlds than that are started).
    """
    if workers is not None and jobs is not None:
        workers = min(workers, jobs)
    if executor is not None and executor.type == "ray":
        from robomd_diagnoser.ray_pool import RayPool

        return RayPool(world_factory, workers, address=executor.address,
                       cpus_per_world=executor.cpus_per_world,
                       gpus_per_world=executor.gpus_per_world, max_workers=jobs)
    if workers is None or workers <= 1:
        return InProcessExecutor(world_factory(), close_world=True)
    return LocalPoolExecutor(world_factory, workers)


@dataclass(frozen=True)
class WorldSpec:
    """A picklable recipe for a simulated world: what :class:`LocalPoolExecutor` workers build.

    :param catalog: path of the perturbation catalog YAML (its ``task`` picks the scene).
    :param policy: policy spec for ``robomd_sim_bridge.policies.make_policy`` (``expert``,
        ``bc``...).
    :param robot: robosuite robot name.
    :param camera_size: square camera resolution in pixels.
    :param horizon: step limit of the environment.
    :param camera: scene camera name.
    """

    catalog: str
    policy: str
    robot: str = "UR5e"
    camera_size: int = 84
    horizon: int = 150
    camera: str = "agentview"

    def build(self) -> World:
        """Build the world and its policy (imports the simulator here, not at module import).

        Rendering is offscreen: ``MUJOCO_GL`` is honoured when set, else EGL is used.
        """
        os.environ.setdefault("MUJOCO_GL", "egl")
        from robomd_sim_bridge.policies import make_policy
        from robomd_sim_bridge.world import RobosuiteWorld

        world = RobosuiteWorld(load_catalog(self.catalog), robot=self.robot, camera=self.camera,
                               camera_size=self.camera_size, horizon=self.horizon)
        world.policy = make_policy(self.policy, world)
        return world

    def __call__(self) -> World:
        return self.build()
