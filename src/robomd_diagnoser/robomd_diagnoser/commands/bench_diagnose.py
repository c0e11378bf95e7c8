"""``robomd bench diagnose``: which agent ranks failure modes best for a given rollout budget.

Replays a ground-truth sweep (``failure_rates.json``) in the synthetic :class:`TableWorld`: each
rollout's outcome is a Bernoulli draw from the measured failure rate of its perturbation set, so
agents are compared on the real rates at no simulation cost. Every agent runs with two parallel
environments (as ``config/campaigns/lift_bc.yaml``) and its default hyper-parameters; at each
budget its P_fail is scored by pairwise accuracy against the sweep.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

#: The shipped Lift BC policy's sweep, under config/ (see docs/diagnosis.md for how it was made).
DEFAULT_GROUND_TRUTH = "ground_truth/lift_bc.json"
METHODS = ("ppo", "a2c", "uniform", "thompson")
BUDGETS = (21, 42, 63, 84, 105, 126, 168, 210, 252, 336, 420, 504)
TARGET = 0.9


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "diagnose",
        help="compare PPO, A2C, uniform sweep and Thompson sampling on a sweep's failure rates",
        description="Runs each agent on outcomes sampled from a ground-truth sweep's measured "
                    "failure rates (synthetic table world) and reports the pairwise accuracy of "
                    "its failure likelihood at several budgets, averaged over seeds, and the "
                    "rollouts each needs to reach 0.9.")
    p.add_argument("--ground-truth", type=Path, default=None,
                   help="a sweep's failure_rates.json, as written by `robomd sweep` "
                        f"(default: config/{DEFAULT_GROUND_TRUTH}, the shipped Lift BC policy)")
    p.add_argument("--catalog", type=Path,
                   help="catalog YAML (default: config/catalogs/<task of the sweep>.yaml)")
    p.add_argument("--seeds", type=int, default=5, help="seeds per method (default: %(default)s)")
    p.add_argument("--budgets", default=",".join(map(str, BUDGETS)),
                   help="comma-separated rollout budgets (default: %(default)s)")
    p.add_argument("--reference-budget", type=int, default=126,
                   help="budget of the headline figures (default: %(default)s, lift_bc.yaml's)")
    p.add_argument("--methods", default=",".join(METHODS),
                   help="comma-separated agents (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(func=run)


def run_method(method: str, catalog: Any, truth: Any, seed: int,
               budgets: list[int]) -> dict[int, tuple[float | None, float | None]]:
    """Run one agent once; P_fail's and the observed rates' pairwise accuracy at each budget.

    :param method: agent type.
    :param catalog: the swept catalog.
    :param truth: the ground truth.
    :param seed: seed of the agent and of the sampled outcomes.
    :param budgets: ascending budgets to score at.
    """
    from stable_baselines3.common.vec_env import DummyVecEnv

    from robomd_diagnoser.agents import make_agent
    from robomd_diagnoser.analysis import pairwise_accuracy
    from robomd_diagnoser.config import AGENT_PARAMS, RL_AGENTS, AgentConfig
    from robomd_diagnoser.env import DiagnosisEnv, rollout_seed
    from robomd_diagnoser.table_world import TableWorld

    n_envs = 2
    cap = 3 if method in RL_AGENTS else 1
    counts = np.zeros((len(catalog), 2))  # single-perturbation trials, failures
    index = {n: i for i, n in enumerate(catalog.names)}

    def factory(i: int) -> Any:
        return lambda: DiagnosisEnv(
            TableWorld(catalog, truth.rates, nominal_rate=truth.nominal or 0.0),
            horizon=150, max_perturbations=cap, seed=seed, env_index=i, n_envs=n_envs)

    venv = DummyVecEnv([factory(i) for i in range(n_envs)])
    agent = make_agent(AgentConfig(method, AGENT_PARAMS[method]), len(catalog), seed)
    nominal = np.stack([venv.env_method("nominal_observation", rollout_seed(seed, 0, k, 0, -1),
                                        indices=[0])[0] for k in range(2)])
    scores: dict[int, tuple[float | None, float | None]] = {}
    todo = list(budgets)

    def hook(done: int, infos: Any) -> bool:
        for info in infos:
            if info["success"] is not None and len(info["perturbations"]) == 1:
                i = index[info["perturbations"][0]]
                counts[i] += (1, not info["success"])
        while todo and done >= todo[0]:
            p = agent.failure_likelihood(nominal)
            observed = (1 + counts[:, 1]) / (2 + counts[:, 0])
            scores[todo.pop(0)] = (
                pairwise_accuracy(dict(zip(catalog.names, p, strict=True)), truth.rates),
                pairwise_accuracy(dict(zip(catalog.names, observed, strict=True)), truth.rates))
        return bool(todo)

    agent.run(venv, budgets[-1], hook)
    venv.close()
    return scores


def run(args: argparse.Namespace) -> int:
    import torch

    from robomd_diagnoser.analysis import load_ground_truth
    from robomd_diagnoser.catalog import CatalogError, load_catalog
    from robomd_diagnoser.commands.bench import machine
    from robomd_diagnoser.paths import find_config

    if args.ground_truth is None:
        args.ground_truth = find_config(DEFAULT_GROUND_TRUTH)
    if not args.ground_truth.is_file():
        print(f"robomd bench diagnose: no ground truth at {args.ground_truth}; make one with "
              "`robomd sweep --task lift --policy bc --rollouts 10 --workers 2` and pass its "
              "failure_rates.json with --ground-truth", file=sys.stderr)
        return 2
    try:
        truth = load_ground_truth(args.ground_truth)
        task = json.loads(Path(args.ground_truth).read_text()).get("task")
        catalog = load_catalog(args.catalog or find_config(f"catalogs/{task}.yaml"))
        budgets = sorted({int(b) for b in args.budgets.split(",")} | {args.reference_budget})
        methods = [m.strip() for m in args.methods.split(",")]
        unknown = [m for m in methods if m not in METHODS]
        if unknown:
            raise ValueError(f"--methods: unknown {unknown}; use some of {', '.join(METHODS)}")
    except (ValueError, CatalogError, FileNotFoundError) as exc:
        print(f"robomd bench diagnose: {exc}", file=sys.stderr)
        return 2
    missing = [n for n in catalog.names if n not in truth.rates]
    if missing:
        print(f"robomd bench diagnose: {truth.source} has no rate for {missing}; sweep the whole "
              f"catalog {catalog.source}", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    start = time.monotonic()
    per_method: dict[str, Any] = {}
    for method in methods:
        runs = [run_method(method, catalog, truth, seed, budgets) for seed in range(args.seeds)]
        curve = {}
        for b in budgets:
            acc = [r[b][0] for r in runs if r[b][0] is not None]
            obs = [r[b][1] for r in runs if r[b][1] is not None]
            curve[b] = {"pairwise_accuracy": float(np.mean(acc)) if acc else None,
                        "std": float(np.std(acc)) if acc else None,
                        "observed_pairwise_accuracy": float(np.mean(obs)) if obs else None}
        reach = next((b for b in budgets if (curve[b]["pairwise_accuracy"] or 0) >= TARGET), None)
        per_method[method] = {"curve": curve, "rollouts_to_0.9": reach}
        print(f"{method}: done ({time.monotonic() - start:.0f} s)", file=sys.stderr)
    ref = args.reference_budget
    best = max(per_method, key=lambda m: per_method[m]["curve"][ref]["pairwise_accuracy"] or 0)
    pairs = sum(1 for i, a in enumerate(catalog.names) for b in catalog.names[i + 1:]
                if abs(truth.rates[a] - truth.rates[b]) >= 0.2 - 1e-9)
    figures = {
        "ground_truth": str(truth.source), "perturbations": len(catalog), "pairs": pairs,
        "seeds": args.seeds, "reference_budget": ref, "budgets": budgets,
        **{f"{m}_pairwise_accuracy": per_method[m]["curve"][ref]["pairwise_accuracy"]
           for m in per_method},
        "best_method": best,
        "rollouts_to_0.9": {m: per_method[m]["rollouts_to_0.9"] for m in per_method},
        "sweep_rollouts_to_0.9": per_method.get("uniform", {}).get("rollouts_to_0.9"),
        "methods": per_method, "seconds": round(time.monotonic() - start, 1),
        "machine": machine()}
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"ground truth {truth.source}: {len(catalog)} perturbations, {pairs} pairs with true "
          f"rates >= 0.2 apart; {args.seeds} seeds; table-world replay")
    print("pairwise accuracy of P_fail (mean over seeds) by budget [observed-rate accuracy]:")
    print(f"{'budget':>8}" + "".join(f"{m:>18}" for m in per_method))
    for b in budgets:
        cells = []
        for m in per_method:
            c = per_method[m]["curve"][b]
            acc, obs = c["pairwise_accuracy"], c["observed_pairwise_accuracy"]
            cells.append(f"{acc:.3f} [{obs:.3f}]" if acc is not None else "-")
        print(f"{b:>8}" + "".join(f"{c:>18}" for c in cells))
    print(f"best at {ref} rollouts: {best}; rollouts to reach {TARGET}: "
          + ", ".join(f"{m} {r}" for m, r in figures["rollouts_to_0.9"].items()))
    print(f"paper Table I anchor (Lift/BC): PPO 0.823, A2C 0.742; {figures['seconds']} s on "
          f"{figures['machine']['cpu']} ({figures['machine']['cores']} cores)")
    return 0
