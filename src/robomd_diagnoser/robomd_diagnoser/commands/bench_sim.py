"""``robomd bench sim``: where a simulated rollout's time goes, and how close we run to the floor.

Measured side by side in one run:

- per control step: physics (``env.step``), camera rendering and policy inference, whose sum is
  the per-step floor of a rollout;
- achieved rollouts per minute with 1 and 2 worker processes on the same jobs, and the ratio of
  the 1-worker figure to the floor (everything that is not a step: resets, perturbation, judging,
  process hand-off);
- latency of applying a perturbation by editing the loaded model in place versus the paper
  code's way (rewrite the model XML and reset).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

from robomd_diagnoser.executor import LocalPoolExecutor, RolloutJob, WorldSpec


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sim", help="per-step costs, rollout throughput (1 and 2 workers), perturbation latency",
        description="Benchmarks the simulated world on this machine: per-step physics, rendering "
                    "and policy cost, achieved rollouts/minute for 1 and 2 workers against the "
                    "per-step floor, and in-place perturbation against XML rewrite + reset.")
    p.add_argument("--task", default="lift", help="task (default: %(default)s)")
    p.add_argument("--policy", default="auto",
                   help="policy spec; auto = the shipped bc policy if present, else expert")
    p.add_argument("--camera-size", type=int, default=84, help="camera pixels (default: 84)")
    p.add_argument("--horizon", type=int, default=150, help="rollout step limit (default: 150)")
    p.add_argument("--steps", type=int, default=60,
                   help="control steps timed for the per-step costs (default: %(default)s)")
    p.add_argument("--rollouts", type=int, default=12,
                   help="rollouts per throughput measurement (default: %(default)s)")
    p.add_argument("--apply-perturbations", type=int, default=6,
                   help="catalog perturbations timed both ways (default: %(default)s)")
    p.add_argument("--json", action="store_true",
                   help="print the figures as JSON on stdout (the summary goes to stderr)")
    p.set_defaults(func=run)


@dataclass(frozen=True)
class _WarmWorldSpec:
    """A :class:`WorldSpec` whose world has rendered and acted once, so timing starts warm."""

    spec: WorldSpec

    def __call__(self):
        world = self.spec.build()
        world.policy.reset()
        world.policy.act(world.observation(image=True))
        return world


def _ms(samples: list[float]) -> float:
    return round(1000.0 * statistics.median(samples), 3)


def _step_costs(world, steps: int) -> dict[str, Any]:
    """Median per-step cost (ms) of physics, rendering and policy over a real episode."""
    import numpy as np

    world.reset(0)
    world.policy.reset()
    physics, render, policy, state = [], [], [], []
    for _ in range(steps):
        t0 = time.perf_counter()
        obs = world.observation(image=False)
        t1 = time.perf_counter()
        obs["image"] = world.render(world.camera_size)
        t2 = time.perf_counter()
        action = np.asarray(world.policy.act(obs), dtype=float)
        t3 = time.perf_counter()
        world.env.step(action)
        t4 = time.perf_counter()
        state.append(t1 - t0)
        render.append(t2 - t1)
        policy.append(t3 - t2)
        physics.append(t4 - t3)
    uses_image = bool(getattr(world.policy, "uses_image", True))
    costs = {"physics_ms": _ms(physics), "render_ms": _ms(render), "policy_ms": _ms(policy),
             "state_ms": _ms(state), "policy_uses_image": uses_image}
    costs["floor_ms"] = round(costs["physics_ms"] + costs["policy_ms"] + costs["state_ms"] +
                              (costs["render_ms"] if uses_image else 0.0), 3)
    return costs


def _throughput(spec: WorldSpec, workers: int, jobs: list[RolloutJob]) -> dict[str, Any]:
    """Rollouts/minute of ``jobs`` on ``workers`` warm worker processes."""
    with LocalPoolExecutor(_WarmWorldSpec(spec), workers) as ex:
        ex.start()  # build the worlds before timing
        start = time.perf_counter()
        results = list(ex.map_unordered(jobs))
        wall = time.perf_counter() - start
    steps = sum(r.result.steps for r in results)
    return {"workers": workers, "rollouts": len(results), "steps": steps,
            "wall_s": round(wall, 3), "rollouts_per_min": round(60.0 * len(results) / wall, 2),
            "ms_per_step": round(1000.0 * wall / steps, 3),
            "failures": sum(1 for r in results if r.outcome is not None and not r.outcome.success)}


def _apply_latency(world, names: list[str]) -> dict[str, Any]:
    """Median seconds to apply each perturbation in place vs by XML rewrite + reset."""
    from robomd_sim_bridge.xml_rewrite import apply_by_xml_rewrite

    in_place, xml = [], []
    for name in names:
        world.reset(0)
        t0 = time.perf_counter()
        world.apply([name])
        in_place.append(time.perf_counter() - t0)
        world.reset(0)
        t0 = time.perf_counter()
        apply_by_xml_rewrite(world, [name])
        xml.append(time.perf_counter() - t0)
        world.load_xml(world.nominal_xml)  # back to the nominal model for the next one
    world.reset(0)
    return {"perturbations": names, "in_place_ms": _ms(in_place), "xml_rewrite_ms": _ms(xml),
            "in_place_ms_each": [round(1000 * t, 3) for t in in_place],
            "xml_rewrite_ms_each": [round(1000 * t, 3) for t in xml]}


def run(args: argparse.Namespace) -> int:
    import torch

    from robomd_diagnoser.commands.bench import machine
    from robomd_diagnoser.paths import find_config

    torch.set_num_threads(1)  # as in each worker process, so the floor is comparable
    policy = args.policy
    if policy == "auto":
        from robomd_sim_bridge.policies import SHIPPED_BC

        policy = "bc" if SHIPPED_BC.is_file() else "expert"
    catalog_path = find_config(f"catalogs/{args.task}.yaml")
    spec = WorldSpec(str(catalog_path), policy, camera_size=args.camera_size,
                     horizon=args.horizon)

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    say(f"bench sim: task {args.task}, policy {policy}, camera {args.camera_size}px")
    t0 = time.perf_counter()
    world = _WarmWorldSpec(spec)()
    build_s = time.perf_counter() - t0
    steps = _step_costs(world, args.steps)
    say(f"per step: physics {steps['physics_ms']} ms, render {steps['render_ms']} ms, policy "
        f"{steps['policy_ms']} ms -> floor {steps['floor_ms']} ms")
    names = world.catalog.names[: args.apply_perturbations]
    apply = _apply_latency(world, names)
    world.close()
    speedup_apply = apply["xml_rewrite_ms"] / apply["in_place_ms"]
    say(f"apply: in place {apply['in_place_ms']} ms, XML rewrite + reset "
        f"{apply['xml_rewrite_ms']} ms ({speedup_apply:.0f}x)")

    perts = [()] + [(n,) for n in world.catalog.names]
    jobs = [RolloutJob(f"bench/{i}", perts[i % len(perts)], seed=i, max_steps=args.horizon)
            for i in range(args.rollouts)]
    runs = {}
    for workers in (1, 2):
        say(f"throughput with {workers} worker(s): {len(jobs)} rollouts...")
        runs[workers] = _throughput(spec, workers, jobs)
        say(f"  {runs[workers]['rollouts_per_min']} rollouts/min "
            f"({runs[workers]['ms_per_step']} ms per step)")
    one, two = runs[1], runs[2]
    floor_rpm = 60.0 / (one["steps"] / one["rollouts"] * steps["floor_ms"] / 1000.0)
    result = {
        "benchmark": "sim",
        "machine": {**machine(), "load_avg_1min_at_end": round(os.getloadavg()[0], 2)},
        "task": args.task, "policy": policy, "camera_size": args.camera_size,
        "horizon": args.horizon, "world_build_s": round(build_s, 3),
        "per_step": steps,
        "floor_rollouts_per_min": round(floor_rpm, 2),
        "throughput": {"1_worker": one, "2_workers": two},
        "throughput_ratio_to_floor": round(one["rollouts_per_min"] / floor_rpm, 3),
        "two_worker_speedup": round(two["rollouts_per_min"] / one["rollouts_per_min"], 3),
        "apply": apply,
        "apply_speedup_vs_xml": round(speedup_apply, 1),
    }
    say(f"floor {result['floor_rollouts_per_min']} rollouts/min; achieved/floor "
        f"{result['throughput_ratio_to_floor']}; 2-worker speedup {result['two_worker_speedup']}")
    if args.json:
        print(json.dumps(result, indent=2))
    return 0
