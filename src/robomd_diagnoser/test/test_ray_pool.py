"""Tests of the Ray rollout pool: the local pool's conformance tests, lost actors and nodes, and a
driver killed mid-sweep. Every test starts and stops its own Ray (small, no dashboard)."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ray = pytest.importorskip("ray")

import test_executor  # noqa: E402
from test_executor import (  # noqa: E402,F401  (re-run here against the Ray pool)
    BrokenFactory,
    FakeFactory,
    FakeWorld,
    jobs,
    test_pool_reports_a_failing_job_and_stays_usable,
    test_pool_runs_every_job_exactly_once_on_two_workers,
    test_pool_streams_results_before_all_jobs_finish,
)

from robomd_diagnoser.catalog import Catalog, Perturbation  # noqa: E402
from robomd_diagnoser.jobs import RolloutJob, RolloutJobError  # noqa: E402
from robomd_diagnoser.pools import LocalPool  # noqa: E402
from robomd_diagnoser.ray_pool import RayPool  # noqa: E402
from robomd_diagnoser.table_world import TableWorld  # noqa: E402
from robomd_diagnoser.world import RolloutStatus  # noqa: E402

# Test modules are not installed on the workers: ship their classes with the pickles.
ray.cloudpickle.register_pickle_by_value(test_executor)
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])

TABLE = Catalog("table", tuple(Perturbation(n, n, "color", "cube", (1, 0, 0, 1))
                               for n in ("red", "blue", "green", "big")))
RATES = {"red": 0.9, "blue": 0.5, "green": 0.2, "big": 0.0}


@dataclass(frozen=True)
class TableFactory:
    """A picklable table world; ``exit_on_seed`` kills the worker's process in that rollout."""

    rollout_seconds: float = 0.0
    exit_on_seed: int | None = None

    def __call__(self) -> TableWorld:
        world = TableWorld(TABLE, RATES, nominal_rate=0.1, rollout_seconds=self.rollout_seconds)
        if self.exit_on_seed is not None:
            execute, bad = world.execute, self.exit_on_seed

            def dying(max_steps, seed, *args, **kwargs):
                if seed == bad:
                    os._exit(1)
                return execute(max_steps, seed, *args, **kwargs)

            world.execute = dying
        return world


def table_jobs(n: int) -> list[RolloutJob]:
    sets = [(), ("red",), ("blue",), ("green",), ("big",), ("blue", "green")]
    return [RolloutJob(f"t/{i}", sets[i % len(sets)], seed=i, max_steps=30) for i in range(n)]


def _init(tmp: Path) -> None:
    # Logical CPUs: room for the module's pool and one more of two actors (tiny worlds).
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False,
             logging_level="WARNING", _temp_dir=str(tmp))


@pytest.fixture
def short_tmp():
    """A short directory for Ray's sessions (its socket paths must stay under 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="rmd", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def local_ray():
    path = Path(tempfile.mkdtemp(prefix="rmd", dir="/tmp"))
    _init(path)
    yield
    ray.shutdown()
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def pool(local_ray):
    """What the conformance tests imported from test_executor run against."""
    with RayPool(FakeFactory(delay=0.05), workers=2) as ex:
        yield ex


def test_ray_pool_pulls_a_job_only_when_an_actor_is_free(local_ray):
    pulled: list[str] = []

    def source():
        for job in jobs(12):
            pulled.append(job.key)
            yield job

    with RayPool(FakeFactory(delay=1.0), workers=2) as ex:
        results = ex.map_unordered(source())
        next(results)
        assert len(pulled) == 2  # one per actor, nothing queued ahead
        results.close()
        # The abandoned rollout still running does not leak into the next iteration.
        assert sorted(r.job.key for r in ex.map_unordered(jobs(3))) == ["job/0", "job/1", "job/2"]


def test_ray_pool_reports_a_world_that_cannot_be_built(local_ray):
    with RayPool(BrokenFactory(), workers=1) as ex:
        with pytest.raises(RolloutJobError, match="(?s)could not build its world.*bc.pt missing"):
            list(ex.map_unordered(jobs(1)))


def test_ray_pool_gives_the_local_pools_outcomes_for_the_same_seeds(local_ray):
    todo = table_jobs(24)
    with RayPool(TableFactory(), workers=2) as ex:
        on_ray = {r.job.key: (r.result.status, r.outcome.success, r.result.steps)
                  for r in ex.map_unordered(todo)}
    with LocalPool(TableFactory(), workers=2) as ex:
        local = {r.job.key: (r.result.status, r.outcome.success, r.result.steps)
                 for r in ex.map_unordered(todo)}
    assert on_ray == local
    assert {s for _, s, _ in local.values()} == {True, False}  # not trivially equal


def test_a_killed_actor_loses_no_job_and_is_replaced(local_ray):
    todo = table_jobs(10)
    with RayPool(TableFactory(rollout_seconds=0.3), workers=2) as ex:
        results, killed, first = [], None, set()
        for res in ex.map_unordered(todo):
            results.append(res)
            if killed is None:  # SIGKILL the other actor, busy with its rollout
                first = {a.pid for a in ex._actors.values()}
                killed = (first - {res.worker}).pop()
                os.kill(killed, signal.SIGKILL)
        assert sorted(r.job.key for r in results) == sorted(j.key for j in todo)
        assert all(r.result.status == RolloutStatus.COMPLETED for r in results)
        assert ex.lost_actors == 1
        # The killed actor may have finished its rollout a moment before the signal: that one
        # result can still arrive, nothing after it.
        assert [r.worker for r in results[1:]].count(killed) <= 1
        assert {r.worker for r in results} - first  # a replacement actor took jobs


def test_a_job_whose_actor_keeps_dying_is_aborted_not_failed(local_ray):
    todo = table_jobs(4)
    with RayPool(TableFactory(exit_on_seed=2), workers=2, max_retries=1) as ex:
        results = {r.job.key: r for r in ex.map_unordered(todo)}
        assert sorted(results) == sorted(j.key for j in todo)
        bad = results["t/2"]
        assert bad.result.status == RolloutStatus.ABORTED and bad.outcome is None
        assert "lost 2 times" in bad.result.reason
        assert bad.to_record("/tmp").success is None  # never counted as a policy failure
        assert ex.lost_actors == 2
        assert all(r.outcome is not None for k, r in results.items() if k != "t/2")


def test_a_video_comes_back_to_the_driver(local_ray, tmp_path):
    pytest.importorskip("imageio.v2")
    path = tmp_path / "videos" / "0.mp4"
    with RayPool(FakeFactory(), workers=1) as ex:
        (res,) = ex.map_unordered([RolloutJob("v", (), 0, 5, video=str(path))])
    assert path.stat().st_size > 0 and res.job.video == str(path)


def test_a_campaign_on_ray_runs_its_worlds_in_actors(local_ray, tmp_path):
    """``executor: {type: ray}``: each of the campaign's environments (subprocesses) drives a
    world in a Ray actor; every stored outcome is the table world's draw for its seed."""
    from diagnosis_fixtures import write_campaign

    from robomd_diagnoser.campaign import build_world, run_campaign
    from robomd_diagnoser.config import load_campaign
    from robomd_diagnoser.store import RolloutStore

    def hosts() -> int:  # world actors the cluster has seen, dead or alive
        return sum(a["ActorClassName"] == "_WorldHost"
                   for a in ray._private.state.actors().values())

    before = hosts()
    cfg = load_campaign(write_campaign(tmp_path, budget=12, workers=2,
                                       executor={"type": "ray"}))
    result = run_campaign(cfg, progress=False)
    assert result.new_rollouts == 12
    assert hosts() - before == 2
    world = build_world(cfg)
    with RolloutStore(result.out_dir / "rollouts.sqlite") as store:
        records = store.records()
    assert len(records) >= 12
    for r in records:
        world.reset(r.seed)
        world.apply(r.perturbations)
        steps = world.execute(cfg.world.horizon, r.seed).steps
        assert (r.success, r.steps) == (world.judge().success, steps), r.key


@pytest.mark.parametrize("executor,match", [
    ({"type": "slurm"}, "campaign.executor.type: unknown 'slurm'; use one of local, ray"),
    ({"type": "local", "address": "auto"}, "campaign.executor.address: only for executor type"),
    ({"type": "ray", "cpus_per_world": 0}, "campaign.executor.cpus_per_world: must be > 0"),
    ({"type": "ray", "gpus": 1}, "campaign.executor.gpus: unknown key"),
    ({"type": "ray", "address": ""}, "campaign.executor.address: 'auto', 'host:port'"),
    ("ray", "campaign.executor: expected a mapping"),
])
def test_executor_config_errors_name_the_field(tmp_path, executor, match):
    from diagnosis_fixtures import write_campaign

    from robomd_diagnoser.config import ConfigError, load_campaign

    with pytest.raises(ConfigError, match=match):
        load_campaign(write_campaign(tmp_path, executor=executor))


def test_executor_is_read_from_yaml_and_overridden_on_the_command_line(tmp_path, capsys):
    from diagnosis_fixtures import write_campaign

    from robomd_diagnoser.cli.main import main
    from robomd_diagnoser.config import PoolConfig, load_campaign

    cfg = load_campaign(write_campaign(tmp_path, executor={
        "type": "ray", "address": "ray://head:10001", "gpus_per_world": 0.25}))
    assert cfg.executor == PoolConfig("ray", "ray://head:10001", 1.0, 0.25)
    assert "executor" not in cfg.fingerprint()  # a campaign may resume on another executor
    assert main(["sweep", "--task", "lift", "--policy", "expert", "--ray-address", "auto",
                 "--out", str(tmp_path / "s")]) == 2
    assert "--ray-address: only with the ray executor" in capsys.readouterr().err


DRIVER = textwrap.dedent("""
    import sys
    from robomd_diagnoser.ray_pool import RayPool
    from robomd_diagnoser.store import RolloutStore
    from robomd_diagnoser.sweep import run_jobs
    from test_ray_pool import TableFactory, table_jobs

    with RolloutStore(sys.argv[1]) as store, RayPool(
            TableFactory(rollout_seconds=0.1), workers=2, address=sys.argv[2]) as pool:
        run_jobs(store, pool, table_jobs(30), progress=False)
""")


def test_a_driver_killed_mid_sweep_resumes_from_the_store(local_ray, tmp_path):
    """A sweep driver joins the cluster, is SIGKILLed mid-sweep, and the same command resumes:
    every rollout is stored once, and the killed driver's actors did not outlive it (the rerun
    needs their CPUs)."""
    db = tmp_path / "rollouts.sqlite"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-c", DRIVER, str(db), ray.get_runtime_context().gcs_address]

    def stored() -> int:
        if not db.exists():
            return 0
        with sqlite3.connect(db) as con:
            try:
                return con.execute("SELECT COUNT(*) FROM rollouts").fetchone()[0]
            except sqlite3.OperationalError:
                return 0

    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while stored() < 6 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, proc.stderr.read()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = stored()
    assert 6 <= first < 30

    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT key, COUNT(*) FROM rollouts GROUP BY key").fetchall()
    assert sorted(k for k, _ in rows) == sorted(j.key for j in table_jobs(30))
    assert {n for _, n in rows} == {1}
    # What the resumed sweep stored is what an uninterrupted run gives.
    from robomd_diagnoser.store import RolloutStore

    with RolloutStore(db) as store:
        got = {r.key: r.success for r in store.records("t/")}
    world = TableFactory()()
    for job in table_jobs(30):
        world.reset(job.seed)
        world.apply(job.perturbations)
        world.execute(job.max_steps, job.seed)
        assert got[job.key] == world.judge().success, job.key


def test_removing_a_node_mid_sweep_loses_and_repeats_nothing(short_tmp, monkeypatch):
    """Two nodes of one CPU each; the second is removed (processes killed) mid-sweep, then a new
    node joins and the pool, sized by the cluster, grows onto it."""
    from ray.cluster_utils import Cluster

    ray.shutdown()  # the module's local Ray (this test runs last)
    # Ray's test cluster writes its address to $RAY_TMPDIR/ray/ray_current_cluster (default
    # /tmp/ray, which it does not create) and puts the added nodes' sessions there: keep both in
    # the test's own directory, which must exist on a machine that never ran Ray.
    monkeypatch.setenv("RAY_TMPDIR", str(short_tmp))
    (short_tmp / "ray").mkdir()
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "include_dashboard": False, "temp_dir": str(short_tmp),
        "_system_config": {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500,
                           "health_check_failure_threshold": 2}})
    try:
        node = cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address, log_to_driver=False, logging_level="WARNING")
        cluster.wait_for_nodes()
        todo = table_jobs(24)
        seen: list[str] = []
        events = {}

        def source():
            for i, job in enumerate(todo):
                if i == 6:
                    cluster.remove_node(node, allow_graceful=False)
                    events["removed"] = len(seen)
                if i == 12:
                    cluster.add_node(num_cpus=1)
                    events["added"] = len(seen)
                yield job

        with RayPool(TableFactory(rollout_seconds=0.3), workers=None) as ex:
            ex.start()
            assert ex.workers == 2
            workers = []
            for res in ex.map_unordered(source()):
                seen.append(res.job.key)
                workers.append(res.worker)
                assert res.result.status == RolloutStatus.COMPLETED
            assert sorted(seen) == sorted(j.key for j in todo)  # none lost, none twice
            assert ex.lost_actors >= 1
            assert ex.workers == 2  # the joined node's CPU counts again
            late = set(workers[events["added"] + 4:])
            assert len(late) == 2, "the pool did not use the node that joined"
    finally:
        ray.shutdown()
        cluster.shutdown()
