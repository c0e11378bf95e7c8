"""Rollout jobs on a Ray cluster: one long-lived actor per world; the store stays with the driver.

:class:`RayPool` implements the :class:`~robomd_diagnoser.pools.JobPool` protocol.
Each actor builds its world once from a picklable factory (e.g. a
:class:`~robomd_diagnoser.config.WorldSettings`) and runs :func:`~robomd_diagnoser.jobs.run_job`
for every job it is given; results stream back to the caller in completion order, and the caller
commits each one to its store as it arrives (as :func:`robomd_diagnoser.sweep.run_jobs` does).
A job carries its seed, so the same jobs give the same outcomes as with the local pool.

Faults: an actor (or its node) that dies mid-rollout loses nothing but that attempt; the job is
run again on another live actor, at most ``max_retries`` more times, and then yields an
``aborted`` result whose reason names the loss (never a policy failure). Lost actors are replaced;
Ray starts a replacement when the cluster has room for it, and a pool built with
``workers=None`` grows onto nodes that join (the cluster's size is re-read between jobs).

:class:`RayWorld` is the same actor seen as a :class:`~robomd_diagnoser.world.World`: diagnosis
campaigns, whose environments drive their worlds step by step, use it through
:class:`RayWorldFactory`.

Ray is imported only here and only when a pool or a world starts, so the core runs without it.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
import traceback
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np

from robomd_diagnoser.jobs import (
    WORKER_ENV,
    JobResult,
    RolloutJob,
    RolloutJobError,
    WorldFactory,
    run_job,
)
from robomd_diagnoser.world import (
    Outcome,
    RolloutResult,
    RolloutStatus,
    StepCallback,
    World,
    WorldError,
)

#: Seconds between two reads of the cluster's size by a pool with ``workers=None``.
RESCALE_INTERVAL = 2.0


def connect(address: str | None = None, **init_kwargs: Any) -> tuple[Any, bool]:
    """Import Ray and join (``address``: ``auto``, ``host:port`` or ``ray://...``) or start
    (``address=None``) a cluster; a process already connected keeps its connection.

    :param address: the cluster to join; None starts a local one on this machine.
    :param init_kwargs: more ``ray.init`` arguments (``num_cpus``, ``_temp_dir``...).
    :returns: the ``ray`` module and whether this call started or joined (the caller then owns
        the connection and shuts it down).
    :raises RuntimeError: if Ray is not installed.
    """
    try:
        import ray
    except ImportError as exc:
        raise RuntimeError("the Ray executor needs the 'ray' package: pip install 'ray==2.60.*' "
                           "(it is in requirements.in; `make setup` installs it)") from exc
    if ray.is_initialized():
        return ray, False
    init_kwargs.setdefault("include_dashboard", False)
    init_kwargs.setdefault("log_to_driver", False)  # worker tracebacks come back with the jobs
    init_kwargs.setdefault("logging_level", "WARNING")
    init_kwargs.setdefault("runtime_env", {"env_vars": dict(WORKER_ENV)})
    ray.init(address=address, **init_kwargs)
    return ray, True


class _WorldHost:
    """The actor's body (made a Ray actor class in :func:`_actor_class`): one world, many jobs."""

    def __init__(self, factory: WorldFactory, cpus: float) -> None:
        import sys

        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(max(1, int(cpus)))
        self.error = ""
        self.world: World | None = None
        try:
            self.world = factory()
        except Exception:
            self.error = traceback.format_exc()

    def ready(self) -> tuple[int, str]:
        """This actor's process id and the traceback of a world that could not be built."""
        return os.getpid(), self.error

    def _world(self) -> World:
        if self.world is None:
            raise RolloutJobError(f"worker {os.getpid()} could not build its world:\n{self.error}")
        return self.world

    def run(self, job: RolloutJob) -> tuple[str, Any]:
        """Run one job: ``("ok", (JobResult, video bytes or None))`` or ``("error", message)``.

        A video is encoded here into a temporary file and handed back as bytes: the driver, not
        the node, keeps the run's files.
        """
        try:
            world = self._world()
            if not job.video:
                return "ok", (run_job(world, job), None)
            with tempfile.TemporaryDirectory() as tmp:
                res = run_job(world, dataclasses.replace(job, video=f"{tmp}/video.mp4"))
                path = Path(tmp) / "video.mp4"
                data = path.read_bytes() if path.is_file() else None
            return "ok", (dataclasses.replace(res, job=job), data)
        except Exception:
            return "error", (f"rollout {job.key} failed in worker {os.getpid()}:\n"
                             f"{traceback.format_exc()}")

    # --- the World protocol, one call at a time (RayWorld) ---
    def catalog(self) -> Any:
        return self._world().catalog

    def call(self, method: str, *args: Any) -> Any:
        return getattr(self._world(), method)(*args)

    def execute(self, max_steps: int, seed: int, record: bool) -> tuple[RolloutResult, list]:
        world = self._world()
        if record:
            world.record = True
        try:
            result = world.execute(max_steps, seed)
        finally:
            if record:
                world.record = False
        return result, list(world.last_frames) if record else []

    def close(self) -> None:
        if self.world is not None:
            self.world.close()
            self.world = None


_ACTOR_CLASS: Any = None


def _actor_class(ray: Any) -> Any:
    global _ACTOR_CLASS
    if _ACTOR_CLASS is None:
        # No automatic restarts: the pool itself decides where a lost job runs again.
        _ACTOR_CLASS = ray.remote(max_restarts=0, max_task_retries=0)(_WorldHost)
    return _ACTOR_CLASS


def _lost_errors(ray: Any) -> tuple[type[BaseException], ...]:
    """Exceptions that mean an actor, its process or its node is gone (not a job's error)."""
    e = ray.exceptions
    return (e.RayActorError, e.WorkerCrashedError, e.NodeDiedError, e.ObjectLostError,
            e.OwnerDiedError)


@dataclass
class _Actor:
    handle: Any
    ready: Any  # the ObjectRef of ready() until it resolved, then None
    pid: int = 0


class RayPool:
    """Run jobs on Ray actors, each owning one world built by ``world_factory``.

    Actors are started on first use and kept until :meth:`close`. Each gets ``cpus_per_world``
    CPUs and ``gpus_per_world`` GPUs from Ray, which places it on any node with room. Each actor
    runs one job at a time, and a job is pulled from the caller's iterator only when an actor is
    free, so a job source may decide what comes next from the results so far.

    :param world_factory: picklable zero-argument callable returning a world (e.g. a
        :class:`~robomd_diagnoser.config.WorldSettings`); called once in each actor. Every node
        must be able to import it (the same workspace installed on each).
    :param workers: number of actors; None: as many as the cluster's CPUs and GPUs allow,
        re-checked between jobs so that nodes joining are used.
    :param address: None starts a local Ray on this machine (shut down by :meth:`close`);
        ``auto``, ``host:port`` or ``ray://host:port`` joins a running cluster. A process
        already connected to Ray keeps its connection (and :meth:`close` leaves it open).
    :param cpus_per_world: CPUs Ray reserves for each actor.
    :param gpus_per_world: GPUs Ray reserves for each actor (for a policy on the GPU).
    :param max_retries: re-runs of a job whose actor was lost before it yields ``aborted``.
    :param max_workers: at most this many actors (e.g. the number of jobs) with ``workers=None``.
    :param start_timeout: seconds without any live actor after which the pool gives up.
    :param init_kwargs: more ``ray.init`` arguments when this pool connects.
    """

    def __init__(self, world_factory: WorldFactory, workers: int | None = None, *,
                 address: str | None = None, cpus_per_world: float = 1.0,
                 gpus_per_world: float = 0.0, max_retries: int = 2,
                 max_workers: int | None = None, start_timeout: float = 300.0,
                 init_kwargs: dict[str, Any] | None = None) -> None:
        if workers is not None and workers < 1:
            raise ValueError(f"workers must be >= 1 or None (the cluster's size), got {workers}")
        if cpus_per_world <= 0 or gpus_per_world < 0:
            raise ValueError(f"cpus_per_world must be > 0 and gpus_per_world >= 0, got "
                             f"{cpus_per_world} and {gpus_per_world}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self._factory = world_factory
        self._fixed = workers
        self._max = max_workers
        self.address = address
        self.cpus_per_world = cpus_per_world
        self.gpus_per_world = gpus_per_world
        self.max_retries = max_retries
        self.start_timeout = start_timeout
        self._init_kwargs = dict(init_kwargs or {})
        self._ray: Any = None
        self._owns_ray = False
        self._actors: dict[Any, _Actor] = {}  # actor id -> actor
        self._idle: deque[Any] = deque()  # ids of ready actors without a job
        self._orphans: dict[Any, Any] = {}  # ref of a job abandoned by a stopped iteration -> id
        self._next_rescale = 0.0
        self.lost_actors = 0

    @property
    def workers(self) -> int:
        """The number of actors the pool keeps (for ``workers=None``: the cluster's size now,
        known once :meth:`start` ran; 1 before)."""
        return self._target() if self._ray is not None else (self._fixed or 1)

    def start(self) -> None:
        """Connect to Ray and start the actors (else done on first use); returns at once."""
        if self._ray is None:
            self._ray, self._owns_ray = connect(self.address, **self._init_kwargs)
        self._rescale(force=True)

    def _target(self) -> int:
        if self._fixed is not None:
            return self._fixed
        total = self._ray.cluster_resources()
        n = int(total.get("CPU", 0) // self.cpus_per_world)
        if self.gpus_per_world:
            n = min(n, int(total.get("GPU", 0) // self.gpus_per_world))
        return max(1, min(n, self._max) if self._max else n)

    def _rescale(self, force: bool = False) -> None:
        """Start actors up to the target; with ``workers=None`` drop unplaced ones beyond it."""
        now = time.monotonic()
        if not force and now < self._next_rescale:
            return
        self._next_rescale = now + RESCALE_INTERVAL
        target = self._target()
        cls = _actor_class(self._ray)
        while len(self._actors) < target:
            handle = cls.options(num_cpus=self.cpus_per_world,
                                 num_gpus=self.gpus_per_world).remote(self._factory,
                                                                      self.cpus_per_world)
            self._actors[handle._actor_id] = _Actor(handle, handle.ready.remote())
        pending = [a for a, act in self._actors.items() if act.ready is not None]
        for aid in pending[:max(0, len(self._actors) - target)]:
            self._drop(aid)

    def _drop(self, aid: Any) -> None:
        actor = self._actors.pop(aid, None)
        if aid in self._idle:
            self._idle.remove(aid)
        if actor is not None:
            self._ray.kill(actor.handle, no_restart=True)

    def _lose(self, aid: Any) -> None:
        if aid in self._actors:
            self.lost_actors += 1
            self._drop(aid)
        self._next_rescale = 0.0  # replace it as soon as the cluster has room

    def map_unordered(self, jobs: Iterable[RolloutJob]) -> Iterator[JobResult]:
        """Run every job once across the actors, yielding results in completion order.

        :param jobs: the jobs, pulled one at a time as actors free up.
        :raises RolloutJobError: if a job raises in its world, if a world cannot be built, or if
            no actor could start for ``start_timeout`` seconds.
        """
        self.start()
        ray = self._ray
        lost = _lost_errors(ray)
        todo = iter(jobs)
        exhausted = False
        retry: deque[tuple[RolloutJob, int]] = deque()
        running: dict[Any, tuple[Any, RolloutJob, int]] = {}  # ref -> (actor id, job, attempt)
        alive_since = time.monotonic()
        try:
            while True:
                self._rescale()
                while self._idle:
                    if retry:
                        job, attempt = retry.popleft()
                    elif not exhausted and (job := next(todo, None)) is not None:
                        attempt = 0
                    else:
                        exhausted = True
                        break
                    aid = self._idle.popleft()
                    running[self._actors[aid].handle.run.remote(job)] = (aid, job, attempt)
                if exhausted and not retry and not running:
                    return
                waiting = {act.ready: aid for aid, act in self._actors.items()
                           if act.ready is not None}
                refs = [*running, *waiting, *self._orphans]
                if self._idle or running or any(a.ready is None for a in self._actors.values()):
                    alive_since = time.monotonic()
                elif time.monotonic() - alive_since > self.start_timeout:
                    raise RolloutJobError(
                        f"no Ray worker started in {self.start_timeout:.0f} s: each needs "
                        f"{self.cpus_per_world} CPU and {self.gpus_per_world} GPU, the cluster "
                        f"has {ray.cluster_resources()}")
                done, _ = ray.wait(refs, num_returns=1, timeout=0.5) if refs else ([], [])
                for ref in done:
                    if ref in waiting:
                        self._on_ready(ref, waiting[ref], lost)
                    elif ref in self._orphans:
                        aid = self._orphans.pop(ref)
                        self._finish(aid, ref, lost)
                    else:
                        aid, job, attempt = running.pop(ref)
                        if (res := self._finish(aid, ref, lost)) is not None:
                            yield res
                        elif attempt < self.max_retries:
                            retry.append((job, attempt + 1))
                        else:
                            yield _aborted(job, f"the Ray worker running it was lost "
                                                f"{attempt + 1} times (node or process died)")
        except GeneratorExit:
            self._orphans.update({ref: aid for ref, (aid, _, _) in running.items()})
            raise
        except RolloutJobError:
            self._orphans.update({ref: aid for ref, (aid, _, _) in running.items()})
            raise
        except BaseException:  # Ctrl-C or an error in the caller: stop the busy actors now
            for aid in [aid for aid, _, _ in running.values()]:
                self._drop(aid)
            raise

    def _on_ready(self, ref: Any, aid: Any, lost: tuple[type[BaseException], ...]) -> None:
        actor = self._actors.get(aid)
        if actor is None:
            return
        try:
            pid, error = self._ray.get(ref)
        except lost:
            self._lose(aid)
            return
        if error:
            self._drop(aid)
            raise RolloutJobError(f"worker {pid} could not build its world:\n{error}")
        actor.ready, actor.pid = None, pid
        self._idle.append(aid)

    def _finish(self, aid: Any, ref: Any,
                lost: tuple[type[BaseException], ...]) -> JobResult | None:
        """The result of a finished job (None if its actor was lost); frees the actor."""
        try:
            tag, payload = self._ray.get(ref)
        except lost:
            self._lose(aid)
            return None
        if aid in self._actors:
            self._idle.append(aid)
        if tag == "error":
            raise RolloutJobError(payload)
        res, video = payload
        if video is not None:
            Path(res.job.video).parent.mkdir(parents=True, exist_ok=True)
            Path(res.job.video).write_bytes(video)
        return res

    def close(self) -> None:
        """Stop the actors (their worlds go with them); shut Ray down if this pool started it."""
        if self._ray is None:
            return
        if self._ray.is_initialized():  # else the connection, and the actors, are gone already
            for aid in list(self._actors):
                self._drop(aid)
        self._actors.clear()
        self._idle.clear()
        self._orphans.clear()
        if self._owns_ray:
            self._ray.shutdown()
        self._ray = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _aborted(job: RolloutJob, reason: str) -> JobResult:
    return JobResult(job, RolloutResult(RolloutStatus.ABORTED, 0, 0.0, reason), None)


@dataclass(frozen=True)
class RayWorldFactory:
    """Picklable recipe for campaign environment ``i``'s world: a :class:`RayWorld`.

    :param world_factory: builds the world inside the actor (e.g. a ``WorldSettings``).
    :param address: the cluster to join (the driver's, see :func:`cluster_address`).
    :param cpus_per_world: CPUs per actor.
    :param gpus_per_world: GPUs per actor.
    """

    world_factory: WorldFactory
    address: str
    cpus_per_world: float = 1.0
    gpus_per_world: float = 0.0

    def __call__(self, index: int) -> RayWorld:
        return RayWorld(self.world_factory, self.address, self.cpus_per_world,
                        self.gpus_per_world)


def cluster_address(address: str | None = None) -> str:
    """Join or start (``address=None``) a cluster from this process and return the address other
    processes of this machine join it by (Ray's GCS address, or ``address`` for a ``ray://``
    client). A cluster started here stops when this process exits.

    :param address: as for :class:`RayPool`.
    """
    ray, _ = connect(address)
    if address and address.startswith("ray://"):
        return address
    return ray.get_runtime_context().gcs_address


class RayWorld:
    """A :class:`~robomd_diagnoser.world.World` living in a Ray actor, called step by step.

    An actor lost during a call raises :class:`~robomd_diagnoser.world.WorldError` (so the
    rollout is aborted and retried, never a policy failure) and is replaced by a new actor,
    placed by Ray on any node with room, before the next call.

    :param world_factory: builds the world inside the actor.
    :param address: the cluster to join.
    :param cpus_per_world: CPUs for the actor.
    :param gpus_per_world: GPUs for the actor.
    """

    def __init__(self, world_factory: WorldFactory, address: str, cpus_per_world: float = 1.0,
                 gpus_per_world: float = 0.0) -> None:
        self._ray, _ = connect(address)
        self._lost = _lost_errors(self._ray)
        self._factory = world_factory
        self._options = {"num_cpus": cpus_per_world, "num_gpus": gpus_per_world}
        self._cpus = cpus_per_world
        self._actor: Any = None
        self.record = False
        self.last_frames: list[np.ndarray] = []
        self.catalog = self._call("catalog")

    def _call(self, method: str, *args: Any) -> Any:
        if self._actor is None:
            self._actor = _actor_class(self._ray).options(**self._options).remote(
                self._factory, self._cpus)
        try:
            return self._ray.get(getattr(self._actor, method).remote(*args))
        except self._lost as exc:
            self._ray.kill(self._actor, no_restart=True)
            self._actor = None
            raise WorldError(f"the Ray worker was lost ({type(exc).__name__}); a new one "
                             "replaces it") from None
        except self._ray.exceptions.RayTaskError as exc:
            cause = exc.cause if isinstance(getattr(exc, "cause", None), BaseException) else exc
            raise cause from None

    def reset(self, seed: int) -> None:
        self._call("call", "reset", seed)

    def apply(self, perturbations: Sequence[str]) -> None:
        self._call("call", "apply", tuple(perturbations))

    def observe(self) -> np.ndarray:
        return self._call("call", "observe")

    def execute(self, max_steps: int, seed: int, on_step: StepCallback | None = None,
                should_stop: Any = None) -> RolloutResult:
        result, frames = self._call("execute", max_steps, seed, self.record)
        self.last_frames = frames
        if on_step is not None:
            on_step(result.steps, result.duration)
        return result

    def judge(self) -> Outcome:
        return self._call("call", "judge")

    def close(self) -> None:
        if self._actor is not None:
            try:
                self._ray.get(self._actor.close.remote(), timeout=30)
            except Exception:  # a lost actor has nothing left to release
                pass
            self._ray.kill(self._actor, no_restart=True)
            self._actor = None
