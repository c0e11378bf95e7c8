"""Shared helpers for the diagnosis tests: a five-perturbation catalog, its rate table and
campaign files for the synthetic TableWorld."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from robomd_diagnoser.catalog import Catalog, parse_catalog

NAMES = ("a", "b", "c", "d", "e")
RATES = {"a": 0.9, "b": 0.6, "c": 0.3, "d": 0.1, "e": 0.05}
NOMINAL_RATE = 0.05


def catalog() -> Catalog:
    """The test catalog (colour perturbations named a..e)."""
    return parse_catalog({"task": "toy", "perturbations": [
        {"name": n, "text": f"perturbation {n}", "kind": "color", "target": "cube",
         "value": [0.1 * i, 0.0, 0.0]} for i, n in enumerate(NAMES)]})


def write_files(tmp: Path, rates: dict[str, float] | None = None) -> tuple[Path, Path]:
    """Write the catalog YAML and a sweep-style failure_rates.json; returns their paths."""
    rates = rates or RATES
    cat = tmp / "catalog.yaml"
    cat.write_text(yaml.safe_dump({"task": "toy", "perturbations": [
        p.to_dict() for p in catalog()]}))
    gt = tmp / "failure_rates.json"
    gt.write_text(json.dumps({
        "task": "toy", "policy": "synthetic",
        "nominal": {"name": "nominal", "failure_rate": NOMINAL_RATE},
        "perturbations": [{"name": n, "failure_rate": r} for n, r in rates.items()]}))
    return cat, gt


def write_campaign(tmp: Path, **overrides: Any) -> Path:
    """A table-world campaign YAML in ``tmp`` (uniform agent, 20 rollouts unless overridden)."""
    cat, gt = write_files(tmp)
    data: dict[str, Any] = {
        "task": "toy", "catalog": str(cat),
        "world": {"type": "table", "failure_rates": str(gt), "horizon": 40},
        "agent": {"type": "uniform"}, "budget": 20, "workers": 1, "seed": 0,
        "output": str(tmp / "campaign")}
    data.update(overrides)
    path = tmp / "campaign.yaml"
    path.write_text(yaml.safe_dump(data))
    return path
