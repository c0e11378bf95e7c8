"""``robomd bench finetune``'s experiment: does failure-guided fine-tuning help the shipped Lift BC
policy?

Diagnoses the policy (or takes a finished campaign), fine-tunes it on expert demonstrations under
its top failure modes (targeted) and, under the same budget, spread over the whole catalog
(uniform), and evaluates all three policies on the same scenes and seeds. Small defaults; the
paper-sized run is ``full``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from robomd_diagnoser.benchmarks import machine

#: (campaign budget, FinetuneRequest fields) of the default and the ``--full`` run.
SIZES = {
    "small": (42, {"top": 3, "demos_per_mode": 12, "epochs": 30, "eval_rollouts": 8,
                   "eval_all": False}),
    "full": (126, {"top": 3, "demos_per_mode": 20, "epochs": 30, "eval_rollouts": 10,
                   "eval_all": True}),
}


def targeted_vs_uniform(out: Path, size: str, workers: int, campaign: Path | None = None,
                        original_demos: Path | None = None,
                        log: Callable[[str], None] = print) -> dict[str, Any]:
    """Diagnose (unless ``campaign`` is given), fine-tune both ways, evaluate; the figures.

    :param out: working directory, resumable.
    :param size: ``small`` or ``full`` (:data:`SIZES`).
    :param workers: simulator processes.
    :param campaign: a finished campaign to take the modes from.
    :param original_demos: the parent's training demonstrations for the replay sample.
    :param log: progress lines.
    :raises ValueError, RuntimeError: for config, campaign, fine-tuning and rollout errors.
    """
    from robomd_diagnoser.campaign import run_campaign
    from robomd_diagnoser.config import load_campaign
    from robomd_diagnoser.learning.finetune import FinetuneRequest, load_diagnosis, run_finetune
    from robomd_diagnoser.learning.finetune_report import write_html
    from robomd_diagnoser.paths import find_config

    budget, fields = SIZES[size]
    start = time.monotonic()
    if campaign is None:
        config = load_campaign(find_config("campaigns/lift_bc.yaml"))
        config = dataclasses.replace(config, budget=budget, workers=workers)
        campaign = out / "campaign"
        log(f"bench finetune: diagnosing {config.policy} on {config.task} "
            f"({config.agent.type} agent, {budget} rollouts) into {campaign}")
        run_campaign(config, campaign, progress=False)
    diagnosed = time.monotonic()
    req = FinetuneRequest(strategies=("targeted", "uniform"), workers=workers,
                          original_demos=original_demos, **fields)
    result = run_finetune(load_diagnosis(campaign), out / "finetune", req, log=log)
    html_path = write_html(result, out / "finetune")
    s = result["summary"]
    figures = {
        "success_under_top_modes_before": s["success_under_top_modes_before"],
        "success_under_top_modes_after": s["success_under_top_modes_targeted"],
        "nominal_success_before": s["nominal_success_before"],
        "nominal_success_after": s["nominal_success_targeted"],
        "targeted_vs_uniform_gain": s["targeted_vs_uniform_gain"],
        "targeted_vs_uniform_gain_interval": s["targeted_vs_uniform_gain_interval"],
        "targeted_vs_uniform_p_value": s["targeted_vs_uniform_p_value"],
        "success_under_top_modes_uniform": s["success_under_top_modes_uniform"],
        "nominal_success_uniform": s["nominal_success_uniform"],
        "wasserstein_before": s["wasserstein_before"],
        "wasserstein_targeted": s["wasserstein_targeted"],
        "wasserstein_uniform": s["wasserstein_uniform"],
        "top_modes": result["top_modes"],
        "intervals": {label: {k: res[k] for k in ("top_modes", "nominal")}
                      for label, res in result["policies"].items()},
        "size": size, "campaign": str(campaign), "campaign_budget": budget,
        "demos_per_strategy": result["budget"], **{k: fields[k] for k in fields},
        "replay": result["strategies"]["targeted"]["replay_source"],
        "seconds": {"diagnosis": round(diagnosed - start, 1),
                    "total": round(time.monotonic() - start, 1)},
        "report": str(html_path), "machine": machine()}
    return figures
