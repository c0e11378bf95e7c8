"""``robomd bench ros``: what the ROS 2 path costs per rollout compared with the in-process path.

The same rollout jobs (perturbation set, seed) run twice: in-process on a world built here, and
through a ``sim_bridge_node`` process over DDS via :class:`~robomd_diagnoser.ros.world.RosWorld`
(services, the action with per-step feedback, camera frames). Each rollout is timed end to end
(reset, apply, observe, execute, judge); the two paths alternate job by job so that load from
other processes affects both alike, and their outcomes must agree.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from typing import Any

DEFAULT_PERTURBATIONS = ("", "table_red", "cube_blue", "light_green")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ros", help="per-rollout overhead of the ROS 2 path versus in-process",
        description="Runs the same seeded rollouts in-process and through a sim bridge node over "
                    "DDS and reports the ratio of their per-rollout wall times.")
    p.add_argument("--task", default="lift", help="task (default: %(default)s)")
    p.add_argument("--policy", default="bc", help="policy spec (default: %(default)s)")
    p.add_argument("--seeds", type=int, default=3,
                   help="seeds per perturbation (default: %(default)s)")
    p.add_argument("--perturbations", default=",".join(DEFAULT_PERTURBATIONS),
                   help="comma-separated catalog names; empty = nominal (default: %(default)s)")
    p.add_argument("--camera-size", type=int, default=84)
    p.add_argument("--horizon", type=int, default=150)
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=run)


def _jobs(names: list[str], seeds: int, horizon: int) -> list[Any]:
    from robomd_diagnoser.executor import RolloutJob

    return [RolloutJob(f"{name or 'nominal'}/{seed}", (name,) if name else (), 1000 + seed,
                       horizon, observe=True)
            for name in names for seed in range(seeds)]


def _timed(world: Any, job: Any) -> tuple[float, Any]:
    from robomd_diagnoser.executor import run_job

    start = time.perf_counter()
    result = run_job(world, job)
    return time.perf_counter() - start, result


def run(args: argparse.Namespace) -> int:
    import rclpy

    from robomd_diagnoser.bringup import Graph, NodeSpec
    from robomd_diagnoser.commands.bench import machine
    from robomd_diagnoser.executor import WorldSpec
    from robomd_diagnoser.paths import find_config
    from robomd_diagnoser.ros.world import RosWorldFactory

    catalog = str(find_config(f"catalogs/{args.task}.yaml"))
    spec = WorldSpec(catalog, args.policy, camera_size=args.camera_size, horizon=args.horizon)
    jobs = _jobs(args.perturbations.split(","), args.seeds, args.horizon)
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 50))
    print(f"robomd bench ros: {len(jobs)} rollouts of {args.task}/{args.policy}, in-process then "
          "over ROS 2", file=sys.stderr, flush=True)

    world = spec.build()
    bridge = NodeSpec("robomd_sim_bridge", "sim_bridge_node", "sim_bridge", parameters={
        "task": args.task, "catalog": catalog, "policy": args.policy,
        "camera_size": args.camera_size, "horizon": args.horizon})
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
        "rollouts": len(jobs), "task": args.task, "policy": args.policy,
        "in_process_s_per_rollout": round(per_rollout(local), 4),
        "ros_s_per_rollout": round(per_rollout(remote), 4),
        "ros_overhead_ratio": round(per_rollout(remote) / per_rollout(local), 4),
        "steps_per_rollout": statistics.fmean(r.result.steps for _t, r in local),
        "same_outcomes": sum(same), "machine": machine()}
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        for key, value in figures.items():
            print(f"{key:>26}: {value}")
    return 0
