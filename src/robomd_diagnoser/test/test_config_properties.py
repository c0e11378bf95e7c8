"""Property-based tests of the campaign and catalog parsers through the CLI: generated campaign
and catalog YAML (valid, and with one field mutated) given to ``robomd diagnose --config F`` in
process with a table world and a tiny budget. Each either runs — and the run is the campaign the
files describe — or exits with code 2 and a message naming the field or the file; never a
traceback."""

from __future__ import annotations

import contextlib
import io
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from robomd_diagnoser.cli.main import main

NAMES = ("a", "b", "c")
RATES = {"a": 0.9, "b": 0.4, "c": 0.0}

#: Values that break a field in some way (type, range, finiteness, size).
WILD = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf, -1, 0, 1e12, 10**15, 2**63, "", "x", None,
                     True, [], {}, [1, 2], {"k": 1}, 0.5, 1, 3, 65, "ppo", "table", 1e-300]),
    st.integers(-10, 10**7), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12))

CAMPAIGN_FIELDS = ("task", "name", "budget", "max_perturbations", "seed", "workers",
                   "checkpoint_every", "max_retries", "nominal_samples", "agent", "agent.type",
                   "agent.prior_alpha", "agent.learning_rate", "rewards", "rewards.failure",
                   "rewards.success_per_step", "world", "world.type", "world.horizon",
                   "world.image_size", "world.rollout_seconds", "world.camera_size", "policy",
                   "catalog", "output", "unknown_key")
CATALOG_FIELDS = ("task", "world", "perturbations", "p.name", "p.text", "p.kind", "p.target",
                  "p.value", "p.value.0", "p.extra")


def _catalog() -> dict[str, Any]:
    return {"task": "toy", "perturbations": [
        {"name": n, "text": f"perturbation {n}", "kind": "color", "target": "cube",
         "value": [0.1 * i, 0.2, 0.3]} for i, n in enumerate(NAMES)]}


def _campaign(tmp: Path, agent: str, budget: int) -> dict[str, Any]:
    return {"task": "toy", "catalog": str(tmp / "catalog.yaml"),
            "world": {"type": "table", "failure_rates": str(tmp / "failure_rates.json"),
                      "horizon": 20},
            "agent": {"type": agent}, "budget": budget, "workers": 1, "seed": 0,
            "nominal_samples": 1, "output": str(tmp / "out")}


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    """Set a dotted field (``p.`` is the first perturbation); a non-mapping parent is replaced."""
    parts = path.split(".")
    if parts[0] == "p":
        target: Any = doc["perturbations"][0]
        parts = parts[1:]
    else:
        target = doc
    for key in parts[:-1]:
        if isinstance(target, list):
            target = target[int(key)]
            continue
        if not isinstance(target.get(key), (dict, list)):
            target[key] = {}
        target = target[key]
    last = parts[-1]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value


def _run(config: Path) -> tuple[int, str, str]:
    """``robomd diagnose`` on ``config``, always into ``<its directory>/out`` (a generated
    ``output`` is parsed but never written to)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["diagnose", "--config", str(config), "--out", str(config.parent / "out"),
                     "--no-progress"])
    return code, out.getvalue(), err.getvalue()


def _check_outcome(tmp: Path, code: int, out: str, err: str, named: tuple[str, ...]) -> None:
    assert "Traceback" not in err and "Traceback" not in out, err
    if code == 2:
        assert err.strip(), "exit code 2 without a message"
        assert any(n in err for n in named), f"the message names no field or file: {err}"
        return
    assert code == 0, (code, err)
    # a run: it is the campaign the files describe
    campaign = yaml.safe_load((tmp / "campaign.yaml").read_text())
    catalog = yaml.safe_load((tmp / "catalog.yaml").read_text())
    result = json.loads((tmp / "out" / "diagnosis.json").read_text())
    assert result["task"] == campaign["task"] == catalog["task"]
    assert result["budget"] == campaign["budget"]
    assert [p["name"] for p in result["catalog"]] == [p["name"] for p in
                                                      catalog["perturbations"]]
    d = result["diagnosis"]
    assert d["rollouts_completed"] + d["rollouts_aborted"] >= campaign["budget"]
    assert math.isclose(sum(result["p_fail"].values()), 1.0, rel_tol=1e-6)


def _write(tmp: Path, campaign: dict[str, Any], catalog: dict[str, Any]) -> Path:
    (tmp / "failure_rates.json").write_text(json.dumps({
        "nominal": {"name": "nominal", "failure_rate": 0.0},
        "perturbations": [{"name": n, "failure_rate": r} for n, r in RATES.items()]}))
    (tmp / "catalog.yaml").write_text(yaml.safe_dump(catalog))
    path = tmp / "campaign.yaml"
    path.write_text(yaml.safe_dump(campaign))
    return path


PROPERTY = settings(max_examples=60, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(agent=st.sampled_from(["uniform", "thompson"]), budget=st.integers(1, 4),
       target=st.sampled_from(("campaign",) * 3 + ("catalog",) * 2 + ("none",)),
       campaign_field=st.sampled_from(CAMPAIGN_FIELDS),
       catalog_field=st.sampled_from(CATALOG_FIELDS), value=WILD)
def test_generated_campaigns_run_or_are_refused_naming_the_field(agent, budget, target,
                                                                 campaign_field, catalog_field,
                                                                 value):
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        campaign, catalog = _campaign(tmp, agent, budget), _catalog()
        if target == "campaign":
            _set(campaign, campaign_field, value)
        elif target == "catalog":
            _set(catalog, catalog_field, value)
        config = _write(tmp, campaign, catalog)
        code, out, err = _run(config)
        event(f"exit code {code}")  # --hypothesis-show-statistics: both outcomes occur
        top = campaign_field.split(".")[0]
        named = (f"campaign.{top}", f"campaign {config}", str(config), "campaign.catalog",
                 str(tmp / "catalog.yaml"), "failure_rates", "campaign.world")
        _check_outcome(tmp, code, out, err, named)


@settings(max_examples=15, deadline=None, derandomize=True)
@given(data=st.binary(min_size=1, max_size=64), which=st.sampled_from(["campaign", "catalog"]))
def test_bytes_instead_of_yaml_are_refused_naming_the_file(data, which):
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        config = _write(tmp, _campaign(tmp, "uniform", 2), _catalog())
        broken = config if which == "campaign" else tmp / "catalog.yaml"
        broken.write_bytes(b"\xff\xfe" + data)  # never valid UTF-8
        code, out, err = _run(config)
        assert code == 2 and "Traceback" not in err
        assert str(broken) in err, err
