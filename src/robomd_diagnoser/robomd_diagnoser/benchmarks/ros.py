"""``robomd bench ros``'s experiment: what the ROS 2 path costs per rollout compared with the
in-process path.

The same rollout jobs (perturbation set, seed) run twice: in-process on a world built here, and
through a ``sim_bridge_node`` process over DDS via :class:`~robomd_diagnoser.ros.world.RosWorld`
(services, the action with per-step feedback, camera frames). Each rollout is timed end to end
(reset, apply, observe, execute, judge); the two paths alternate job by job so that load from
other processes affects both alike, and their outcomes must agree.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from robomd_diagnoser.benchmarks import machine

DEFAULT_PERTURBATIONS = ("", "table_red", "cube_blue", "light_green")


def _jobs(names: list[str], seeds: int, horizon: int) -> list[Any]:
    from robomd_diagnoser.jobs import RolloutJob

    return [RolloutJob(f"{name or 'nominal'}/{seed}", (name,) if name else (), 1000 + seed,
                       horizon, observe=True)
            for name in names for seed in range(seeds)]


def _timed(world: Any, job: Any) -> tuple[float, Any]:
    from robomd_diagnoser.jobs import run_job

    start = time.perf_counter()
    result = run_job(world, job)
    return time.perf_counter() - start, result


def ros_overhead(task: str, policy: str, seeds: int, perturbations: Sequence[str],
                 camera_size: int, horizon: int,
                 log: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Time the same seeded rollouts in-process and through a sim bridge node; the figures.

    :param task: task (its catalog under config/catalogs).
    :param policy: policy spec.
    :param seeds: seeds per perturbation.
    :param perturbations: catalog names; an empty name is the nominal scene.
    :param camera_size: camera pixels.
    :param horizon: step limit.
    :param log: progress lines.
    """
    import rclpy

    from robomd_diagnoser.config import WorldSettings
    from robomd_diagnoser.paths import find_config
    from robomd_diagnoser.ros.bringup import Graph, NodeSpec
    from robomd_diagnoser.ros.world import RosWorldFactory

    catalog = str(find_config(f"catalogs/{task}.yaml"))
    spec = WorldSettings(catalog=catalog, policy=policy, camera_size=camera_size,
                         horizon=horizon)
    jobs = _jobs(list(perturbations), seeds, horizon)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 50))
    log(f"robomd bench ros: {len(jobs)} rollouts of {task}/{policy}, in-process then over "
        "ROS 2")

    world = spec.build()
    bridge = NodeSpec("robomd_sim_bridge", "sim_bridge_node", "sim_bridge", parameters={
        "task": task, "catalog": catalog, "policy": policy,
        "camera_size": camera_size, "horizon": horizon})
    graph = Graph([bridge])
    graph.start()
    try:
        ros_world = RosWorldFactory(catalog, ["/robomd"], startup_timeout=180.0,
                                    rollout_timeout=600.0)(0)
        _timed(world, jobs[0]), _timed(ros_world, jobs[0])  # warm-up: first render and policy
        local, remote = [], []
        for i, job in enumerate(jobs):
            pair = [(local, world), (remote, ros_world)]
            for runs, w in pair if i % 2 == 0 else pair[::-1]:
                runs.append(_timed(w, job))
        ros_world.close()
    finally:
        graph.stop()
        world.close()
        rclpy.try_shutdown()

    def per_rollout(runs: list[tuple[float, Any]]) -> float:
        return statistics.fmean(t for t, _r in runs)

    same = [(a.outcome.success if a.outcome else None) == (b.outcome.success if b.outcome else None)
            and a.result.steps == b.result.steps for (_, a), (_, b) in zip(local, remote,
                                                                            strict=True)]
    figures = {
        "rollouts": len(jobs), "task": task, "policy": policy,
        "in_process_s_per_rollout": round(per_rollout(local), 4),
        "ros_s_per_rollout": round(per_rollout(remote), 4),
        "ros_overhead_ratio": round(per_rollout(remote) / per_rollout(local), 4),
        "steps_per_rollout": statistics.fmean(r.result.steps for _t, r in local),
        "same_outcomes": sum(same), "machine": machine()}
    return figures
