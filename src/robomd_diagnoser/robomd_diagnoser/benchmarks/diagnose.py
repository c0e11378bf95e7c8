"""The replay bench of ``robomd bench diagnose``: which agent finds a space's failure modes in the
fewest rollouts, with intervals that hold.

The bench's space is a ground truth's members (:mod:`robomd_diagnoser.space_truth`). A replayed
rollout of a member is a Bernoulli draw at the member's ground-truth rate, which is then the true
rate. A true failure mode is a member with rate >= ``threshold``. Agents act through the same
:class:`~robomd_diagnoser.agents.Agent` interface as in a campaign, against
:class:`MemberOracleEnv` (a Gymnasium env, one member per rollout, no simulator) in a
Stable-Baselines3 ``DummyVecEnv``. Every agent reports through one decision rule
(:func:`robomd_diagnoser.confseq.decide`) on its own rollouts, plus the predictions of a
generalising agent; both count toward recall and precision (the figures say how many reported
members are decided, predicted without a rollout, or predicted with too few rollouts to
decide). The sweep visits the members in a seeded random order, one rollout per member per pass.

Per agent and seed the bench scores, every ``max(1, N // 200)`` rollouts, the recall and
precision of the reported failure modes, and at each budget (a fraction of the members) also the
coverage of the reported anytime-valid intervals (tried members only: (member, seed) cases
whose interval contains the true rate), the pairwise accuracy of the agent's failure score
(pairs of members with true rates >= 0.2 apart) and the interaction recall (multi-level true
failure modes all of whose single levels, as members, are not failure modes).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from robomd_diagnoser.analysis import pairwise_accuracy
from robomd_diagnoser.config import AGENT_PARAMS, AGENT_TYPES, RL_AGENTS, AgentConfig
from robomd_diagnoser.confseq import FAILURE_MODE, confidence_sequence, decide
from robomd_diagnoser.space_truth import SpaceTruth
from robomd_diagnoser.world import RolloutStatus

AGENTS = ("uniform", "random", "thompson", "good_arm", "factor", "ppo", "ppo_masked")
#: Bench names for agent configurations other than a type's defaults.
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {"ppo_masked": ("ppo", {"mask_decided": True})}
FRACTIONS = (0.05, 0.1, 0.25, 1.0)
TARGET = 0.9
OBS_SIZE = 36


@dataclass(frozen=True)
class BenchSettings:
    """How the bench runs.

    :param agents: agent types (or :data:`VARIANTS`) to run (``uniform`` is the sweep).
    :param seeds: seeds per agent.
    :param threshold: failure-mode threshold.
    :param confidence: confidence of the intervals and of the decisions.
    :param fractions: budgets checked, as fractions of the members.
    :param max_passes: a run stops after this many rollouts per member (or when it reaches the
        target after the last budget).
    :param rl_passes: the same cap for PPO and A2C (their steps cost far more); budgets beyond
        it are not scored for them.
    """

    agents: tuple[str, ...] = AGENTS
    seeds: int = 5
    threshold: float = 0.5
    confidence: float = 0.95
    fractions: tuple[float, ...] = FRACTIONS
    max_passes: float = 30.0
    rl_passes: float = 0.25
    params: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        known = (*AGENT_TYPES, *VARIANTS)
        unknown = [a for a in self.agents if a not in known]
        if unknown:
            raise ValueError(f"agents: unknown {unknown}; use some of {', '.join(known)}")
        if self.seeds < 1:
            raise ValueError(f"seeds: at least 1, got {self.seeds}")
        if not all(0 < f for f in self.fractions):
            raise ValueError(f"fractions must be > 0, got {self.fractions}")


class MemberOracleEnv(gym.Env):
    """A bandit over a ground truth's members: action = member index, one Bernoulli rollout at
    its true rate per step, episodes of one step (the env of the replay bench; synthetic).

    :param names: member names.
    :param rates: true failure rates.
    :param seed: seeds the draws.
    """

    metadata = {"render_modes": []}

    def __init__(self, names: Sequence[str], rates: np.ndarray, seed: int) -> None:
        super().__init__()
        self.names = list(names)
        self.rates = np.asarray(rates, dtype=float)
        self.draws = np.random.default_rng([seed, 7919])
        self.observation_space = gym.spaces.Box(0, 255, (OBS_SIZE, OBS_SIZE, 3), np.uint8)
        self.action_space = gym.spaces.Discrete(len(self.names))
        self._obs = np.zeros((OBS_SIZE, OBS_SIZE, 3), np.uint8)

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        return self._obs.copy(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        a = int(action)
        failed = bool(self.draws.random() < self.rates[a])
        info = {"perturbations": [self.names[a]], "member": a, "success": not failed,
                "status": RolloutStatus.COMPLETED.value, "steps": 1, "replayed": False}
        return self._obs.copy(), 1.0 if failed else -0.001, True, False, info


def interaction_members(truth: SpaceTruth, threshold: float) -> np.ndarray:
    """Indices of multi-level true failure modes whose single levels (as members) all are not.

    Members whose singles are not all in the space are left out.
    """
    rates = truth.rates
    single = {m.levels[0]: i for i, m in enumerate(truth.members) if len(m.levels) == 1}
    out = []
    for i, m in enumerate(truth.members):
        if len(m.levels) > 1 and rates[i] >= threshold and all(lv in single for lv in m.levels):
            if all(rates[single[lv]] < threshold for lv in m.levels):
                out.append(i)
    return np.array(out, dtype=int)


def _reported(agent: Any, failures: np.ndarray, trials: np.ndarray,
              settings: BenchSettings) -> tuple[np.ndarray, dict[str, int]]:
    """Mask of members the agent reports as failure modes (decided or predicted), and how many
    of them are decided, predicted without a rollout, or predicted with too few rollouts to
    decide."""
    decided = decide(failures, trials, settings.threshold, settings.confidence) == 1
    mask = decided.copy()
    untried = tried = 0
    for p in agent.predictions():
        if p.decision == FAILURE_MODE:
            mask[p.index] = True
            untried += p.trials == 0
            tried += p.trials > 0
    return mask, {"decided": int(decided.sum()), "predicted_untried": untried,
                  "predicted_tried": tried}


def run_agent(truth: SpaceTruth, agent_type: str, seed: int,
              settings: BenchSettings) -> dict[str, Any]:
    """One agent, one seed: the curve of recall/precision and the figures at each budget.

    :param truth: the ground truth replayed.
    :param agent_type: agent type or variant (:data:`VARIANTS`).
    :param seed: seeds the agent and the replayed draws.
    :param settings: bench settings.
    """
    from stable_baselines3.common.vec_env import DummyVecEnv

    from robomd_diagnoser.agents import make_agent

    n = len(truth.members)
    rates = truth.rates
    true_fm = rates >= settings.threshold
    inter = interaction_members(truth, settings.threshold)
    names = [m.name for m in truth.members]
    venv = DummyVecEnv([lambda: MemberOracleEnv(names, rates, seed)])
    base, extra = VARIANTS.get(agent_type, (agent_type, {}))
    params = {**AGENT_PARAMS[base], **extra, **settings.params.get(agent_type, {})}
    if base == "uniform":
        params["shuffle"] = True
    agent = make_agent(AgentConfig(base, params), n, seed, members=truth.levels,
                       threshold=settings.threshold, confidence=settings.confidence)
    passes = settings.rl_passes if base in RL_AGENTS else settings.max_passes
    limit = max(1, int(passes * n))
    budgets = sorted({max(1, round(f * n)) for f in settings.fractions} & set(range(limit + 1)))
    every = max(1, n // 200)
    failures = np.zeros(n, dtype=int)
    trials = np.zeros(n, dtype=int)
    state: dict[str, Any] = {"reached": None, "next": every, "curve": [], "at": {}}
    nominal = np.zeros((1, OBS_SIZE, OBS_SIZE, 3), np.uint8)

    def score(done: int) -> None:
        rep, kinds = _reported(agent, failures, trials, settings)
        hits = int((rep & true_fm).sum())
        recall = hits / max(1, int(true_fm.sum()))
        precision = hits / int(rep.sum()) if rep.any() else None
        state["curve"].append((done, recall, precision))
        if (state["reached"] is None and recall >= TARGET and precision is not None
                and precision >= TARGET):
            state["reached"] = done
        while budgets and done >= budgets[0]:
            b = budgets.pop(0)
            tried = np.flatnonzero(trials > 0)
            alpha = 1.0 - settings.confidence
            covered = sum(lo <= rates[i] <= hi for i in tried
                          for lo, hi in [confidence_sequence(int(failures[i]), int(trials[i]),
                                                             alpha)])
            p = agent.failure_likelihood(nominal)
            state["at"][b] = {
                "recall": recall, "precision": precision, "reported": kinds,
                "covered": int(covered), "tried": int(len(tried)),
                "pairwise_accuracy": pairwise_accuracy(dict(enumerate(p)), dict(enumerate(rates))),
                "interaction_recall": float(rep[inter].mean()) if len(inter) else None}

    def hook(done: int, infos: Any) -> bool:
        for info in infos:
            a = info["member"]
            trials[a] += 1
            failures[a] += not info["success"]
        if done >= state["next"] or (budgets and done >= budgets[0]):
            score(done)
            state["next"] = done + every
        return done < limit and (bool(budgets) or state["reached"] is None)

    agent.run(venv, limit, hook)
    venv.close()
    return {"rollouts_to_target": state["reached"], "at": state["at"],
            "rollouts": int(trials.sum())}


def _mean(values: list[Any]) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def run_bench(truth: SpaceTruth, settings: BenchSettings,
              progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every agent over every seed and summarise (the JSON of ``robomd bench diagnose``).

    :param truth: the ground truth replayed.
    :param settings: bench settings.
    :param progress: called with a line after each agent.
    """
    start = time.monotonic()
    n = len(truth.members)
    budgets = sorted({max(1, round(f * n)) for f in settings.fractions})
    per_agent: dict[str, Any] = {}
    for agent_type in settings.agents:
        runs = [run_agent(truth, agent_type, seed, settings) for seed in range(settings.seeds)]
        at = {}
        for b in budgets:
            rows = [r["at"][b] for r in runs if b in r["at"]]
            if not rows:
                continue  # beyond this agent's rollout cap
            tried = sum(r["tried"] for r in rows)
            at[str(b)] = {
                "fraction": b / n,
                "recall": _mean([r["recall"] for r in rows]),
                "precision": _mean([r["precision"] for r in rows]),
                "interval_coverage": sum(r["covered"] for r in rows) / tried if tried else None,
                "cases": tried,
                "pairwise_accuracy": _mean([r["pairwise_accuracy"] for r in rows]),
                "interaction_recall": _mean([r["interaction_recall"] for r in rows]),
                "reported_mean": {k: _mean([r["reported"][k] for r in rows])
                                  for k in rows[0]["reported"]}}
        reached = [r["rollouts_to_target"] for r in runs]
        done = sorted(x for x in reached if x is not None)
        per_agent[agent_type] = {
            "rollouts_to_recall_0.9": (float(np.median(reached)) if len(done) == len(reached)
                                       else None),
            "rollouts_to_recall_0.9_per_seed": reached,
            "rollouts_run": [r["rollouts"] for r in runs], "budgets": at}
        if progress:
            progress(f"{agent_type}: rollouts to recall {TARGET} at precision >= {TARGET}: "
                     f"{per_agent[agent_type]['rollouts_to_recall_0.9']} "
                     f"({time.monotonic() - start:.0f} s)")
    reached = {a: v["rollouts_to_recall_0.9"] for a, v in per_agent.items()
               if v["rollouts_to_recall_0.9"] is not None}
    best = min(reached, key=reached.get) if reached else None
    coverages = [b["interval_coverage"] for v in per_agent.values()
                 for b in v["budgets"].values() if b["interval_coverage"] is not None]
    sweep = per_agent.get("uniform", {}).get("rollouts_to_recall_0.9")
    return {
        "space": truth.space, "ground_truth": truth.source, "command": truth.command,
        "synthetic": truth.source == "<synthetic>", "space_size": n,
        "failure_modes": int((truth.rates >= settings.threshold).sum()),
        "interaction_failure_modes": int(len(interaction_members(truth, settings.threshold))),
        "threshold": settings.threshold, "confidence": settings.confidence,
        "seeds": settings.seeds, "budgets": budgets,
        "max_rollouts": {a: int((settings.rl_passes if VARIANTS.get(a, (a,))[0] in RL_AGENTS
                                 else settings.max_passes) * n) for a in settings.agents},
        "sweep_rollouts_to_recall_0.9": sweep,
        "best_agent": best, "best_rollouts_to_recall_0.9": reached.get(best) if best else None,
        "best_vs_sweep": (reached[best] / sweep) if best and sweep else None,
        "ppo_rollouts_to_recall_0.9": per_agent.get("ppo", {}).get("rollouts_to_recall_0.9"),
        "interval_coverage_min": min(coverages) if coverages else None,
        "agents": per_agent, "seconds": round(time.monotonic() - start, 1)}
