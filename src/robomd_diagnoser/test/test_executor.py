"""Tests of the rollout executors with a tiny picklable fake world."""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass

import numpy as np
import pytest

from robomd_diagnoser.catalog import Catalog, Perturbation
from robomd_diagnoser.jobs import JobResult, RolloutJob, RolloutJobError, run_job
from robomd_diagnoser.pools import InProcessPool, LocalPool, make_pool
from robomd_diagnoser.world import Outcome, RolloutResult, RolloutStatus, World

CATALOG = Catalog("fake", (Perturbation("red", "Make it red", "color", "cube", (1, 0, 0, 1)),
                           Perturbation("big", "Make it big", "size", "cube", (0.1, 0.1, 0.1))))


class FakeWorld:
    """Fails under 'red', aborts on seed 13, raises on seed 666; records frames on request."""

    catalog = CATALOG
    control_freq = 10

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.record = False
        self.last_frames: list[np.ndarray] = []
        self.perts: tuple[str, ...] = ()
        self.seed = -1
        self.builds_in_pid = os.getpid()

    def reset(self, seed: int) -> None:
        self.seed, self.perts = seed, ()

    def apply(self, perturbations) -> None:
        self.perts = tuple(self.catalog[p].name for p in perturbations)

    def observe(self) -> np.ndarray:
        return np.full((8, 8, 3), 255 if "red" in self.perts else 0, np.uint8)

    def execute(self, max_steps, seed, on_step=None, should_stop=None) -> RolloutResult:
        if seed == 666:
            raise RuntimeError("simulator exploded")
        time.sleep(self.delay)
        if seed == 13:
            return RolloutResult(RolloutStatus.ABORTED, 2, self.delay, "fault")
        self.last_frames = [np.full((16, 16, 3), i * 20, np.uint8) for i in range(5)] \
            if self.record else []
        return RolloutResult(RolloutStatus.COMPLETED, max_steps, self.delay)

    def judge(self) -> Outcome:
        ok = "red" not in self.perts
        return Outcome(ok, reason=f"pid {self.builds_in_pid}")

    def close(self) -> None:
        pass


@dataclass(frozen=True)
class FakeFactory:
    """Picklable world factory, as :class:`WorldSettings` is for the real world."""

    delay: float = 0.0

    def __call__(self) -> World:
        return FakeWorld(self.delay)


@dataclass(frozen=True)
class BrokenFactory:
    def __call__(self) -> World:
        raise FileNotFoundError("policy weights bc.pt missing")


def jobs(n: int, perts=("red",)) -> list[RolloutJob]:
    return [RolloutJob(f"job/{i}", perts if i % 2 else (), seed=i, max_steps=7) for i in range(n)]


def test_run_job_resets_applies_executes_and_judges():
    world = FakeWorld()
    res = run_job(world, RolloutJob("k", ("red",), seed=3, max_steps=9, observe=True))
    assert (res.result.status, res.result.steps, res.outcome.success) == ("completed", 9, False)
    assert world.seed == 3 and res.image.max() == 255
    rec = res.to_record("/tmp")
    assert (rec.key, rec.perturbations, rec.seed, rec.success, rec.video) == \
        ("k", ("red",), 3, False, None)


def test_aborted_rollout_is_not_judged():
    res = run_job(FakeWorld(), RolloutJob("k", (), seed=13, max_steps=9))
    assert res.outcome is None
    rec = res.to_record("/tmp")
    assert (rec.status, rec.success, rec.reason) == ("aborted", None, "fault")


def test_video_is_written_and_stored_relative(tmp_path):
    imageio = pytest.importorskip("imageio.v2")
    path = tmp_path / "videos" / "red" / "0.mp4"
    res = run_job(FakeWorld(), RolloutJob("k", ("red",), 0, 5, video=str(path)))
    assert path.is_file()
    assert len(imageio.mimread(path)) == 5
    assert res.to_record(tmp_path).video == os.path.join("videos", "red", "0.mp4")


def test_video_of_a_world_that_cannot_record_is_refused():
    class Plain(FakeWorld):
        def __init__(self):
            super().__init__()
            del self.record

    with pytest.raises(RuntimeError, match="cannot record"):
        run_job(Plain(), RolloutJob("k", (), 0, 5, video="x.mp4"))


def test_in_process_executor_wraps_errors_with_the_key():
    ex = InProcessPool(FakeWorld())
    bad = [RolloutJob("ok", (), 1, 3), RolloutJob("boom", (), 666, 3)]
    it = ex.map_unordered(bad)
    assert next(it).job.key == "ok"
    with pytest.raises(RolloutJobError, match="rollout boom failed: simulator exploded"):
        next(it)


@pytest.fixture(scope="module")
def pool():
    with LocalPool(FakeFactory(delay=0.05), workers=2) as ex:
        yield ex


def test_pool_runs_every_job_exactly_once_on_two_workers(pool):
    todo = jobs(12)
    results: list[JobResult] = list(pool.map_unordered(iter(todo)))
    assert sorted(r.job.key for r in results) == sorted(j.key for j in todo)
    assert len({r.worker for r in results}) == 2
    assert os.getpid() not in {r.worker for r in results}
    for r in results:
        assert r.outcome.success is (r.job.perturbations == ())
        # The world was built once in the worker that ran the job.
        assert r.outcome.reason == f"pid {r.worker}"


def test_pool_streams_results_before_all_jobs_finish(pool):
    slow_jobs = jobs(6)
    first = next(iter(pool.map_unordered(slow_jobs)))
    assert first.job.key in {j.key for j in slow_jobs}
    # The abandoned iteration did not break the pool.
    assert len(list(pool.map_unordered(jobs(4)))) == 4


def test_pool_pulls_jobs_only_as_workers_free_up():
    """The job source decides what to run next from the results (demo collection stops at N
    episodes), so jobs must not be pulled while all slots are busy."""
    pulled: list[str] = []

    def source():
        for job in jobs(12):
            pulled.append(job.key)
            yield job

    with LocalPool(FakeFactory(delay=1.5), workers=2) as ex:
        results = ex.map_unordered(source())
        next(results)  # worker start-up and one 1.5 s rollout: several of the pool's 0.5 s waits
        assert len(pulled) == 4  # 2 per worker, nothing more
        results.close()


def test_pool_reports_a_failing_job_and_stays_usable(pool):
    bad = jobs(3) + [RolloutJob("boom", (), 666, 3)]
    with pytest.raises(RolloutJobError, match="(?s)rollout boom failed.*simulator exploded"):
        list(pool.map_unordered(bad))
    assert len(list(pool.map_unordered(jobs(2)))) == 2


def test_pool_reports_a_world_that_cannot_be_built():
    with LocalPool(BrokenFactory(), workers=1) as ex:
        with pytest.raises(RolloutJobError, match="(?s)could not build its world.*bc.pt missing"):
            list(ex.map_unordered(jobs(1)))


def test_ctrl_c_terminates_busy_workers_without_waiting_for_their_rollouts():
    # Python's own Ctrl-C handler, whatever an earlier test of this process left installed
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        ex = LocalPool(FakeFactory(delay=120.0), workers=2)
        ex.start()
        procs = list(ex._pool._processes.values())
        timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))  # as if Ctrl-C
        timer.start()
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            with ex:
                list(ex.map_unordered(jobs(6)))
        timer.join()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert time.monotonic() - started < 60, "the rollouts in flight were waited for"
    for p in procs:
        p.join(timeout=30)
        assert not p.is_alive()
    assert ex._pool is None


def test_make_executor_picks_in_process_for_one_worker():
    ex = make_pool(FakeFactory(), 1)
    assert isinstance(ex, InProcessPool)
    assert len(list(ex.map_unordered(jobs(3)))) == 3
    assert isinstance(make_pool(FakeFactory(), 2), LocalPool)
