"""``robomd bench sim``'s experiment: where a simulated rollout's time goes, and how close we run
to the floor.

Measured side by side in one run:

- per control step: physics (``env.step``), camera rendering and policy inference, whose sum is
  the per-step floor of a rollout;
- achieved rollouts per minute with 1 and 2 worker processes on the same jobs, and the ratio of
  the 1-worker figure to the floor (everything that is not a step: resets, perturbation, judging,
  process hand-off);
- latency of applying a perturbation by editing the loaded model in place versus the paper
  code's way (rewrite the model XML, rebuild the simulator and reset), also with the episode
  reset counted on the in-place side; the same for a sample of the task's factor-space members
  (``config/catalogs/<task>_factors.yaml``) when the task has one.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from robomd_diagnoser.benchmarks import machine
from robomd_diagnoser.config import WorldSettings
from robomd_diagnoser.jobs import RolloutJob
from robomd_diagnoser.pools import LocalPool
from robomd_sim_bridge.plugins import SHIPPED_BC


@dataclass(frozen=True)
class _WarmWorldSpec:
    """A :class:`WorldSettings` whose world has rendered and acted once, so timing starts warm."""

    spec: WorldSettings

    def __call__(self):
        world = self.spec.build()
        world.policy.reset()
        world.policy.act(world.observation(image=True))
        return world


def _ms(samples: list[float]) -> float:
    return round(1000.0 * statistics.median(samples), 3)


def _step_costs(world, steps: int) -> dict[str, dict[str, Any]]:
    """Median per-step cost (ms, wall clock and process CPU time) of the state read, rendering,
    policy inference and physics, over ``steps`` steps of a real episode."""
    import numpy as np

    parts = ("state", "render", "policy", "physics")
    samples: dict[str, dict[str, list[float]]] = {"wall": {p: [] for p in parts},
                                                  "cpu": {p: [] for p in parts}}

    @contextmanager
    def timed(part: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), time.process_time()
        yield
        samples["wall"][part].append(time.perf_counter() - wall)
        samples["cpu"][part].append(time.process_time() - cpu)

    world.reset(0)
    world.policy.reset()
    for _ in range(steps):
        with timed("state"):
            obs = world.observation(image=False)
        with timed("render"):
            obs["image"] = world.render(world.camera_size)
        with timed("policy"):
            action = np.asarray(world.policy.act(obs), dtype=float)
        with timed("physics"):
            world.env.step(action)
    uses_image = bool(getattr(world.policy, "uses_image", True))
    costs = {}
    for clock, by_part in samples.items():
        c = {f"{p}_ms": _ms(v) for p, v in by_part.items()}
        c["floor_ms"] = round(sum(v for k, v in c.items() if k != "render_ms" or uses_image), 3)
        c["policy_uses_image"] = uses_image
        costs[clock] = c
    return costs


def _throughput(spec: WorldSettings, workers: int, jobs: list[RolloutJob]) -> dict[str, Any]:
    """Rollouts/minute of ``jobs`` on ``workers`` warm worker processes."""
    with LocalPool(_WarmWorldSpec(spec), workers) as pool:
        pool.start()  # build the worlds before timing
        start = time.perf_counter()
        results = list(pool.map_unordered(jobs))
        wall = time.perf_counter() - start
    steps = sum(r.result.steps for r in results)
    cpu = sum(r.cpu for r in results)
    return {"workers": workers, "rollouts": len(results), "steps": steps,
            "wall_s": round(wall, 3), "rollouts_per_min": round(60.0 * len(results) / wall, 2),
            "ms_per_step": round(1000.0 * wall / steps, 3), "cpu_s": round(cpu, 3),
            # The share of a core each worker actually got: below 1 when the machine is busy.
            "cpu_share": round(cpu / (wall * workers), 3),
            "failures": sum(1 for r in results if r.outcome is not None and not r.outcome.success)}


def _apply_latency_families(spec: WorldSettings, members: int) -> dict[str, Any]:
    """:func:`_apply_latency` over a seeded sample of the factor space's members (every order),
    in a world built from the factor catalog (distractors included)."""
    world = spec.build()
    try:
        space = world.catalog.space
        names = [space.member(i).name for i in space.sample(members, seed=0)]
        return _apply_latency(world, names)
    finally:
        world.close()


def _apply_latency(world, names: list[str]) -> dict[str, Any]:
    """Median latency (ms, wall and CPU) of setting one perturbation three ways.

    ``edit``: the in-place model edit alone (the world's scene editor); ``in_place``:
    ``world.apply``, i.e. the edit plus the episode reset that lets ``observe()`` show the new
    scene; ``xml_rewrite``: the paper code's way, rewrite the MJCF, rebuild the simulator and reset.
    """
    from robomd_sim_bridge.xml_rewrite import apply_by_xml_rewrite

    def edit(perts: list[str]) -> None:
        world.factors.restore()
        for name in perts:
            world.factors.apply(world.catalog[name])

    ways = {"edit": edit, "in_place": world.apply,
            "xml_rewrite": lambda perts: apply_by_xml_rewrite(world, perts)}
    samples: dict[str, list[tuple[float, float]]] = {way: [] for way in ways}
    for name in names:
        for way, apply in ways.items():
            world.reset(0)  # nominal model and episode before each
            wall, cpu = time.perf_counter(), time.process_time()
            apply([name])
            samples[way].append((time.perf_counter() - wall, time.process_time() - cpu))
        world.load_xml(world.nominal_xml)  # back to the nominal model for the next one
    world.reset(0)
    out: dict[str, Any] = {"perturbations": names}
    for way, pairs in samples.items():
        out[f"{way}_ms"] = _ms([w for w, _ in pairs])
        out[f"{way}_cpu_ms"] = _ms([c for _, c in pairs])
        out[f"{way}_ms_each"] = [round(1000 * w, 3) for w, _ in pairs]
    return out


def measure(task: str, policy: str, camera_size: int, horizon: int, steps_timed: int,
            rollouts: int, apply_perturbations: int, apply_members: int,
            say: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Per-step costs, throughput with 1 and 2 workers, and in-place vs XML perturbation (catalog
    entries, and members of the task's factor space when it has one).

    :param task: task (its catalog under config/catalogs).
    :param policy: policy spec; ``auto`` = the shipped bc policy if present, else expert.
    :param camera_size: camera pixels.
    :param horizon: rollout step limit.
    :param steps_timed: control steps timed for the per-step costs.
    :param rollouts: rollouts per throughput measurement.
    :param apply_perturbations: catalog perturbations timed each way.
    :param apply_members: factor-space members timed each way.
    :param say: progress lines.
    """
    import torch

    from robomd_diagnoser.paths import find_config

    torch.set_num_threads(1)  # as in each worker process, so the floor is comparable
    policy = policy
    if policy == "auto":
        policy = "bc" if SHIPPED_BC.is_file() else "expert"
    catalog_path = find_config(f"catalogs/{task}.yaml")
    spec = WorldSettings(catalog=str(catalog_path), policy=policy, camera_size=camera_size,
                     horizon=horizon)

    load_start = round(os.getloadavg()[0], 2)
    say(f"bench sim: task {task}, policy {policy}, camera {camera_size}px "
        f"(load average {load_start} on {os.cpu_count()} cores)")
    t0 = time.perf_counter()
    world = _WarmWorldSpec(spec)()
    build_s = time.perf_counter() - t0
    costs = _step_costs(world, steps_timed)
    steps = costs["wall"]
    say(f"per step: physics {steps['physics_ms']} ms, render {steps['render_ms']} ms, policy "
        f"{steps['policy_ms']} ms -> floor {steps['floor_ms']} ms "
        f"(CPU time: floor {costs['cpu']['floor_ms']} ms)")
    # Spread over the catalog, so every kind of perturbation (colour, size, light...) is timed.
    all_names, k = world.catalog.names, min(apply_perturbations, len(world.catalog))
    names = [all_names[round(i * (len(all_names) - 1) / max(k - 1, 1))] for i in range(k)]
    apply = _apply_latency(world, names)
    world.close()
    speedup_apply = apply["xml_rewrite_ms"] / apply["edit_ms"]
    speedup_with_reset = apply["xml_rewrite_ms"] / apply["in_place_ms"]
    say(f"apply: in-place edit {apply['edit_ms']} ms ({apply['in_place_ms']} ms with the episode "
        f"reset), XML rewrite + rebuild + reset {apply['xml_rewrite_ms']} ms: "
        f"{speedup_apply:.0f}x ({speedup_with_reset:.0f}x with the reset on both sides)")

    families: dict[str, Any] = {}
    factors_path = catalog_path.with_name(f"{task}_factors.yaml")
    if factors_path.is_file():
        say(f"apply, factor space {factors_path.name}: {apply_members} members each way...")
        families = _apply_latency_families(
            WorldSettings(catalog=str(factors_path), policy=policy, camera_size=camera_size,
                      horizon=horizon), apply_members)
        say(f"  in-place edit {families['edit_ms']} ms ({families['in_place_ms']} ms with the "
            f"reset), XML rewrite + rebuild + reset {families['xml_rewrite_ms']} ms: "
            f"{families['xml_rewrite_ms'] / families['edit_ms']:.0f}x")

    perts = [()] + [(n,) for n in world.catalog.names]
    jobs = [RolloutJob(f"bench/{i}", perts[i % len(perts)], seed=i, max_steps=horizon)
            for i in range(rollouts)]
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
        "machine": {**machine(), "load_avg_1min_at_start": load_start,
                    "load_avg_1min_at_end": round(os.getloadavg()[0], 2)},
        "task": task, "policy": policy, "camera_size": camera_size,
        "horizon": horizon, "world_build_s": round(build_s, 3),
        "per_step": steps,
        "per_step_cpu": costs["cpu"],
        "floor_rollouts_per_min": round(floor_rpm, 2),
        "throughput": {"1_worker": one, "2_workers": two},
        "throughput_ratio_to_floor": round(one["rollouts_per_min"] / floor_rpm, 3),
        # The same ratio in CPU time: what is not a step, independent of other load.
        "throughput_ratio_to_floor_cpu": round(
            costs["cpu"]["floor_ms"] * one["steps"] / (1000.0 * one["cpu_s"]), 3),
        "two_worker_speedup": round(two["rollouts_per_min"] / one["rollouts_per_min"], 3),
        "apply": apply,
        "apply_speedup_vs_xml": round(speedup_apply, 1),
        "apply_speedup_vs_xml_with_reset": round(speedup_with_reset, 1),
    }
    if families:
        result["apply_families"] = families
        result["apply_speedup_vs_xml_families"] = round(
            families["xml_rewrite_ms"] / families["edit_ms"], 1)
        result["apply_speedup_vs_xml_families_with_reset"] = round(
            families["xml_rewrite_ms"] / families["in_place_ms"], 1)
        # The same in process CPU time: independent of other load on the machine.
        result["apply_speedup_vs_xml_families_cpu"] = round(
            families["xml_rewrite_cpu_ms"] / families["edit_cpu_ms"], 1)
    say(f"floor {result['floor_rollouts_per_min']} rollouts/min; achieved/floor "
        f"{result['throughput_ratio_to_floor']}; 2-worker speedup {result['two_worker_speedup']}")
    return result
