"""Scale-out figures: the Ray pool against the local pool, a node lost mid-sweep, the store's rate.

:func:`run_scale_bench` measures, on this machine:

- ``ray_vs_local_throughput``: rollouts per second of a :class:`~robomd_diagnoser.ray_pool.RayPool`
  over a local Ray with ``workers`` actors, divided by that of a
  :class:`~robomd_diagnoser.pools.LocalPool` with as many processes, on the same real
  robosuite rollouts (both pools warm; timed rounds alternate between them);
- a simulated two-node cluster (``ray.cluster_utils.Cluster``, one CPU per node) running a sweep
  of table-world rollouts, one node removed (its processes killed) mid-sweep: ``rollouts_lost``
  and ``rollouts_duplicated`` count what the store would have missed or received twice;
- ``store_records_per_s``: how fast the driver commits rollouts to a
  :class:`~robomd_diagnoser.store.RolloutStore` (each one durably), the ceiling of any pool.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from robomd_diagnoser.catalog import load_catalog
from robomd_diagnoser.config import WorldSettings
from robomd_diagnoser.jobs import RolloutJob
from robomd_diagnoser.paths import find_config
from robomd_diagnoser.pools import JobPool, LocalPool
from robomd_diagnoser.store import RolloutRecord, RolloutStore
from robomd_diagnoser.table_world import TableWorld
from robomd_diagnoser.world import RolloutStatus


@dataclass(frozen=True)
class TableSpec:
    """A picklable table world over a catalog: every perturbation fails with ``rate``.

    :param catalog: catalog YAML path.
    :param rate: failure rate of each perturbation (and of the nominal scene).
    :param rollout_seconds: wall-clock time of each rollout.
    """

    catalog: str
    rate: float = 0.3
    rollout_seconds: float = 0.2

    def __call__(self) -> TableWorld:
        cat = load_catalog(self.catalog)
        return TableWorld(cat, dict.fromkeys(cat.names, self.rate), nominal_rate=self.rate,
                          rollout_seconds=self.rollout_seconds)


def _jobs(catalog_path: str, n: int, horizon: int, prefix: str) -> list[RolloutJob]:
    names = load_catalog(catalog_path).names
    sets = [()] + [(name,) for name in names]
    return [RolloutJob(f"{prefix}/{i}", sets[i % len(sets)], seed=i, max_steps=horizon)
            for i in range(n)]


def _timed(pool: JobPool, jobs: list[RolloutJob]) -> tuple[float, list[Any]]:
    start = time.perf_counter()
    results = list(pool.map_unordered(jobs))
    return time.perf_counter() - start, results


def _short_tmp() -> Path:
    """Ray's session directory: short, since its socket paths must stay under 108 bytes."""
    return Path(tempfile.mkdtemp(prefix="rmdb", dir="/tmp"))


def throughput(spec: WorldSettings, jobs: list[RolloutJob], workers: int, rounds: int,
               log: Callable[[str], None]) -> dict[str, Any]:
    """Wall time of ``jobs`` on the local pool and on a local Ray, ``rounds`` times each."""
    import ray

    from robomd_diagnoser.ray_pool import RayPool, connect

    tmp = _short_tmp()
    connect(None, num_cpus=workers, _temp_dir=str(tmp))
    try:
        with LocalPool(spec, workers) as local, RayPool(spec, workers) as on_ray:
            warm = jobs[:workers]
            for name, pool in (("local", local), ("ray", on_ray)):
                log(f"warming the {name} pool ({workers} worlds)...")
                list(pool.map_unordered(warm))
            walls: dict[str, list[float]] = {"local": [], "ray": []}
            results: dict[str, list[Any]] = {"local": [], "ray": []}
            for r in range(rounds):
                for name, pool in (("local", local), ("ray", on_ray)):
                    wall, res = _timed(pool, jobs)
                    walls[name].append(wall)
                    results[name] += res
                    log(f"round {r + 1}/{rounds} {name}: {len(jobs)} rollouts in {wall:.1f} s")
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    same = ({(x.job.key, x.outcome and x.outcome.success, x.result.steps) for x in results["ray"]}
            == {(x.job.key, x.outcome and x.outcome.success, x.result.steps)
                for x in results["local"]})
    out: dict[str, Any] = {"workers": workers, "rollouts_per_round": len(jobs), "rounds": rounds}
    for name in ("local", "ray"):
        n, wall = len(results[name]), sum(walls[name])
        steps = sum(x.result.steps for x in results[name])
        out[name] = {"rollouts": n, "wall_s": round(wall, 2),
                     "rollouts_per_s": round(n / wall, 4),
                     "wall_s_per_round": [round(w, 2) for w in walls[name]],
                     "cpu_s_per_rollout": round(sum(x.cpu for x in results[name]) / n, 3),
                     "steps_per_rollout": round(steps / n, 1)}
    ratios = [lw / rw for lw, rw in zip(walls["local"], walls["ray"], strict=True)]
    out["ray_vs_local_throughput"] = round(sum(walls["local"]) / sum(walls["ray"]), 3)
    out["ray_vs_local_per_round"] = [round(r, 3) for r in ratios]
    out["same_outcomes"] = same
    # Achieved: one worker's wall time per rollout (it shares the cores with any other load).
    per_rollout = sum(walls["local"]) * workers / len(results["local"])
    out["wall_s_per_rollout_per_worker"] = round(per_rollout, 3)
    out["rollouts_per_hour_per_worker"] = round(3600.0 / per_rollout)
    # Capacity: what a core of its own sustains, from the CPU time a rollout costs.
    out["rollouts_per_hour_per_core"] = round(3600.0 / out["local"]["cpu_s_per_rollout"])
    return out


def node_loss(catalog_path: str, rollouts: int, remove_at: int,
              log: Callable[[str], None]) -> dict[str, Any]:
    """A two-node cluster sweeping table-world rollouts; one node is removed mid-sweep."""
    import ray
    from ray.cluster_utils import Cluster

    from robomd_diagnoser.ray_pool import RayPool

    tmp = _short_tmp()
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "include_dashboard": False, "temp_dir": str(tmp),
        "_system_config": {"health_check_initial_delay_ms": 0, "health_check_period_ms": 500,
                           "health_check_failure_threshold": 2}})
    jobs = _jobs(catalog_path, rollouts, 50, "scale")
    yielded: list[str] = []
    statuses: Counter[str] = Counter()
    try:
        node = cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address, log_to_driver=False, logging_level="WARNING")
        cluster.wait_for_nodes()

        def source():
            for i, job in enumerate(jobs):
                if i == remove_at:
                    log(f"removing a node after {len(yielded)} rollouts stored")
                    cluster.remove_node(node, allow_graceful=False)
                yield job

        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as sd, RolloutStore(Path(sd) / "r.sqlite") as store, \
                RayPool(TableSpec(catalog_path), workers=None) as pool:
            pool.start()
            nodes_at_start = pool.workers
            for res in pool.map_unordered(source()):
                yielded.append(res.job.key)
                statuses[res.result.status.value] += 1
                if not store.has(res.job.key):
                    store.add(res.to_record(store.directory))
            stored = len(store.keys())
            lost_actors = pool.lost_actors
        wall = time.perf_counter() - start
    finally:
        ray.shutdown()
        cluster.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    counts = Counter(yielded)
    return {"nodes": 2, "cpus_per_node": 1, "workers_at_start": nodes_at_start,
            "rollouts": rollouts, "node_removed_at_job": remove_at, "wall_s": round(wall, 2),
            "rollouts_stored": stored,
            "rollouts_lost": len({j.key for j in jobs} - set(counts)),
            "rollouts_duplicated": sum(n - 1 for n in counts.values()),
            "rollouts_aborted": statuses[RolloutStatus.ABORTED.value],
            "actors_lost": lost_actors}


def store_write_rate(n: int) -> dict[str, Any]:
    """Records per second committed one by one to a fresh store (each commit durable)."""
    records = [RolloutRecord(f"w/{i}", ("table_color_red",), i, "completed", i % 3 == 0, 80,
                             4.2) for i in range(n)]
    with tempfile.TemporaryDirectory(dir=os.getcwd()) as d, \
            RolloutStore(Path(d) / "rollouts.sqlite") as store:
        start = time.perf_counter()
        for r in records:
            store.add(r)
        wall = time.perf_counter() - start
    return {"records": n, "wall_s": round(wall, 3), "store_records_per_s": round(n / wall, 1)}


def run_scale_bench(task: str = "lift", policy: str = "expert", rollouts: int = 24,
                    workers: int = 2, rounds: int = 2, horizon: int = 150,
                    cluster_rollouts: int = 30, store_records: int = 2000,
                    log: Callable[[str], None] = print) -> dict[str, Any]:
    """Measure the figures of the module doc.

    :param task: task whose catalog gives the scenes.
    :param policy: policy spec of the real rollouts.
    :param rollouts: real rollouts per timed round and pool.
    :param workers: worlds per pool.
    :param rounds: timed rounds per pool (alternating).
    :param horizon: step limit per rollout.
    :param cluster_rollouts: table-world rollouts of the node-loss sweep.
    :param store_records: records committed for the store's write rate.
    :param log: progress lines.
    """
    catalog_path = str(Path(find_config(f"catalogs/{task}.yaml")).resolve())
    spec = WorldSettings(catalog=catalog_path, policy=policy, horizon=horizon)
    load = round(os.getloadavg()[0], 2)
    log(f"store: committing {store_records} records...")
    store = store_write_rate(store_records)
    log(f"store: {store['store_records_per_s']} records/s")
    log(f"throughput: {rollouts} {task}/{policy} rollouts x {rounds} rounds, {workers} workers")
    tp = throughput(spec, _jobs(catalog_path, rollouts, horizon, "bench"), workers, rounds, log)
    log(f"ray/local throughput {tp['ray_vs_local_throughput']}")
    log(f"node loss: {cluster_rollouts} table rollouts on 2 nodes")
    nl = node_loss(catalog_path, cluster_rollouts, cluster_rollouts // 3, log)
    log(f"lost {nl['rollouts_lost']}, duplicated {nl['rollouts_duplicated']}")
    return {"benchmark": "scale", "task": task, "policy": policy, "horizon": horizon,
            "load_avg_1min_at_start": load, "load_avg_1min_at_end": round(os.getloadavg()[0], 2),
            "ray_vs_local_throughput": tp["ray_vs_local_throughput"], "throughput": tp,
            "rollouts_lost": nl["rollouts_lost"],
            "rollouts_duplicated": nl["rollouts_duplicated"], "node_loss": nl,
            "store_records_per_s": store["store_records_per_s"], "store": store}
