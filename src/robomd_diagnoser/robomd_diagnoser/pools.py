r"""Job pools: run rollout jobs in one world or in worker processes, streaming results back.

A pool runs :class:`~robomd_diagnoser.jobs.RolloutJob`\ s and yields each
:class:`~robomd_diagnoser.jobs.JobResult` as soon as it finishes, so the caller can persist it
at once (see :mod:`robomd_diagnoser.store`).

Pools implement the small :class:`JobPool` protocol; campaign code depends only on it, so a
distributed backend (e.g. Ray actors, each owning a world) can be added without changing it.

- :class:`InProcessPool` runs jobs one after the other in a world the caller owns.
- :class:`LocalPool` starts worker processes (spawn start method); each builds its own world once
  from a picklable factory such as :class:`~robomd_diagnoser.config.WorldSettings` and keeps it.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
import sys
import time
import traceback
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Protocol, Self

from robomd_diagnoser.jobs import (
    WORKER_ENV,
    JobResult,
    RolloutJob,
    RolloutJobError,
    WorldFactory,
    run_job,
)
from robomd_diagnoser.policy import PolicyError
from robomd_diagnoser.world import World

if TYPE_CHECKING:
    from robomd_diagnoser.config import PoolConfig



class JobPool(Protocol):
    """Runs rollout jobs and streams results back in completion order."""

    workers: int

    def map_unordered(self, jobs: Iterable[RolloutJob]) -> Iterator[JobResult]:
        """Run every job once; yield each result as soon as it is available.

        Stopping the iteration early (``break``, an exception, Ctrl-C) cancels jobs not started.

        :raises RolloutJobError: if a job raises in its world.
        """

    def close(self) -> None:
        """Stop workers and release their worlds."""


class InProcessPool:
    """Run jobs sequentially in one world owned by the caller.

    :param world: the world to run in.
    :param close_world: close the world in :meth:`close` (when the pool was handed ownership).
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


# --- worker process side of LocalPool -------------------------------------------------
_worker_world: World | None = None
_worker_error: str = ""
_worker_policy_error: PolicyError | None = None


def _init_worker(factory: WorldFactory) -> None:
    """Build this worker's world once. Ctrl-C is left to the parent, which stops the workers."""
    global _worker_world, _worker_error, _worker_policy_error
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)
    try:
        _worker_world = factory()
    except PolicyError as exc:  # bad input, not a bug: the parent reports the message alone
        _worker_policy_error = exc
    except Exception:
        _worker_error = traceback.format_exc()


def _worker_pid(delay: float) -> int:
    time.sleep(delay)  # long enough that one idle worker cannot take every such task at once
    return os.getpid()


def _run_in_worker(job: RolloutJob) -> JobResult:
    if _worker_policy_error is not None:
        raise PolicyError(f"worker {os.getpid()} could not build its world: "
                          f"{_worker_policy_error}")
    if _worker_world is None:
        raise RolloutJobError(f"worker {os.getpid()} could not build its world:\n{_worker_error}")
    try:
        return run_job(_worker_world, job)
    except Exception:
        raise RolloutJobError(f"rollout {job.key} failed in worker {os.getpid()}:\n"
                              f"{traceback.format_exc()}") from None


class LocalPool:
    """Run jobs in ``workers`` processes, each owning one world built by ``world_factory``.

    Workers are started on first use and kept until :meth:`close`; each builds its world once.
    At most ``2 * workers`` jobs are queued at a time, so stopping early loses little work.

    :param world_factory: picklable zero-argument callable returning a world (e.g. a
        :class:`WorldSettings`); called in each worker process.
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
            saved = {k: os.environ.get(k) for k in WORKER_ENV}
            os.environ.update(WORKER_ENV)  # inherited by spawned workers at start-up
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
        :raises PolicyError: if a worker could not build its world because of the policy.
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
        except (GeneratorExit, RolloutJobError, PolicyError):
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


def make_pool(world_factory: WorldFactory, workers: int | None,
              settings: PoolConfig | None = None, jobs: int | None = None) -> JobPool:
    """The job pool ``settings`` describes (default local): for local, an in-process pool for one
    worker, else a process pool; for ray, a :class:`~robomd_diagnoser.ray_pool.RayPool`.

    :param world_factory: builds the world(s).
    :param workers: number of parallel worlds; None: 1 locally, the cluster's size on Ray.
    :param settings: the backend and its settings (a campaign's ``executor:``, ``--executor``).
    :param jobs: the number of jobs to run, if known (no more worlds than that are started).
    """
    if workers is not None and jobs is not None:
        workers = min(workers, jobs)
    if settings is not None and settings.type == "ray":
        from robomd_diagnoser.ray_pool import RayPool

        return RayPool(world_factory, workers, address=settings.address,
                       cpus_per_world=settings.cpus_per_world,
                       gpus_per_world=settings.gpus_per_world, max_workers=jobs)
    if workers is None or workers <= 1:
        return InProcessPool(world_factory(), close_world=True)
    return LocalPool(world_factory, workers)
