"""``robomd bench diagnose``'s experiment: which agent ranks failure modes best for a budget.

Replays a ground-truth sweep (``failure_rates.json``) in the synthetic :class:`TableWorld`: each
rollout's outcome is a Bernoulli draw from the measured failure rate of its perturbation set, so
agents are compared on the real rates at no simulation cost. Every agent runs with two parallel
environments (as ``config/campaigns/lift_bc.yaml``) and its default hyper-parameters; at each
budget its P_fail is scored by pairwise accuracy against the sweep.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from robomd_diagnoser.analysis import GroundTruth, ranked_pairs
from robomd_diagnoser.benchmarks import machine
from robomd_diagnoser.catalog import Catalog

METHODS = ("ppo", "a2c", "uniform", "thompson")
BUDGETS = (21, 42, 63, 84, 105, 126, 168, 210, 252, 336, 420, 504)
TARGET = 0.9


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
    from robomd_diagnoser.campaign import nominal_failure_likelihood
    from robomd_diagnoser.config import AGENT_PARAMS, RL_AGENTS, AgentConfig
    from robomd_diagnoser.diagnosis_env import DiagnosisEnv
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
    scores: dict[int, tuple[float | None, float | None]] = {}
    todo = list(budgets)

    def hook(done: int, infos: Any) -> bool:
        for info in infos:
            if info["success"] is not None and len(info["perturbations"]) == 1:
                i = index[info["perturbations"][0]]
                counts[i] += (1, not info["success"])
        while todo and done >= todo[0]:
            p = nominal_failure_likelihood(agent, venv, seed, 2)
            observed = (1 + counts[:, 1]) / (2 + counts[:, 0])
            scores[todo.pop(0)] = (
                pairwise_accuracy(dict(zip(catalog.names, p, strict=True)), truth.rates),
                pairwise_accuracy(dict(zip(catalog.names, observed, strict=True)), truth.rates))
        return bool(todo)

    agent.run(venv, budgets[-1], hook)
    venv.close()
    return scores


def compare_agents(catalog: Catalog, truth: GroundTruth, methods: Sequence[str], seeds: int,
                   budgets: list[int], reference_budget: int,
                   log: Callable[[str], None] = lambda _m: None) -> dict[str, Any]:
    """Every method over ``seeds`` seeds; the figures ``robomd bench diagnose`` prints.

    :param catalog: the swept catalog.
    :param truth: its ground truth (a rate for every perturbation).
    :param methods: agent types, some of :data:`METHODS`.
    :param seeds: seeds per method.
    :param budgets: ascending budgets to score at (``reference_budget`` among them).
    :param reference_budget: the budget of the headline figures.
    :param log: progress lines.
    """
    import torch

    torch.set_num_threads(1)
    start = time.monotonic()
    per_method: dict[str, Any] = {}
    for method in methods:
        runs = [run_method(method, catalog, truth, seed, budgets) for seed in range(seeds)]
        curve = {}
        for b in budgets:
            acc = [r[b][0] for r in runs if r[b][0] is not None]
            obs = [r[b][1] for r in runs if r[b][1] is not None]
            curve[b] = {"pairwise_accuracy": float(np.mean(acc)) if acc else None,
                        "std": float(np.std(acc)) if acc else None,
                        "observed_pairwise_accuracy": float(np.mean(obs)) if obs else None}
        reach = next((b for b in budgets if (curve[b]["pairwise_accuracy"] or 0) >= TARGET), None)
        per_method[method] = {"curve": curve, "rollouts_to_0.9": reach}
        log(f"{method}: done ({time.monotonic() - start:.0f} s)")
    ref = reference_budget
    best = max(per_method, key=lambda m: per_method[m]["curve"][ref]["pairwise_accuracy"] or 0)
    pairs = len(ranked_pairs(truth.rates, catalog.names))
    figures = {
        "ground_truth": str(truth.source), "perturbations": len(catalog), "pairs": pairs,
        "seeds": seeds, "reference_budget": ref, "budgets": budgets,
        **{f"{m}_pairwise_accuracy": per_method[m]["curve"][ref]["pairwise_accuracy"]
           for m in per_method},
        "best_method": best,
        "rollouts_to_0.9": {m: per_method[m]["rollouts_to_0.9"] for m in per_method},
        "sweep_rollouts_to_0.9": per_method.get("uniform", {}).get("rollouts_to_0.9"),
        "methods": per_method, "seconds": round(time.monotonic() - start, 1),
        "machine": machine()}
    return figures
