"""robomd compare: the policies of table-world sweeps and a campaign, with intervals and tests."""

from __future__ import annotations

import base64
import json
import re
import shutil
from functools import partial
from pathlib import Path

import pytest
from diagnosis_fixtures import write_campaign

from robomd_diagnoser.campaign import STORE_FILE, run_campaign
from robomd_diagnoser.catalog import parse_catalog
from robomd_diagnoser.cli.main import main
from robomd_diagnoser.compare import FIGURES, CompareError, compare, write_comparison
from robomd_diagnoser.config import load_campaign
from robomd_diagnoser.confseq import confidence_sequence
from robomd_diagnoser.stats import holm_adjust, wilson_interval
from robomd_diagnoser.store import RolloutStore
from robomd_diagnoser.sweep import META_KEY, SweepSettings, run_sweep
from robomd_diagnoser.table_world import TableWorld

ROLLOUTS = 12
#: Policy A always fails under ``a``, B never; both fail ``b`` half the time (the table world
#: draws the same outcomes for the same seed and rate, so their counts there are equal); A
#: fails ``c`` half the time, B and the campaign's policy rarely.
RATES_A = {"a": 1.0, "b": 0.5, "c": 0.5, "d": 0.0, "e": 0.0}
RATES_B = {"a": 0.0, "b": 0.5, "c": 0.0, "d": 0.0, "e": 0.0}


def sweep(root: Path, name: str, policy: str, rates: dict[str, float], task: str = "toy",
          rollouts: int = ROLLOUTS) -> Path:
    """A real table-world sweep of a policy whose failure rates are ``rates``."""
    catalog = parse_catalog({"task": task, "perturbations": [
        {"name": n, "text": f"perturbation {n}", "kind": "color", "target": "cube",
         "value": [0.1 * i, 0.0, 0.0]} for i, n in enumerate(rates)]})
    out = root / name
    run_sweep(out, SweepSettings.of(catalog, policy, 0, 40, 84, "UR5e"), catalog,
              partial(TableWorld, catalog, rates), rollouts, progress=False,
              info={"task": task, "policy": policy, "rollouts": rollouts})
    return out


def counted(directory: Path, prefix: str) -> dict[str, tuple[int, int]]:
    """(failures, judged) of each single perturbation and the nominal scene, read from the store."""
    out: dict[str, list[int]] = {}
    with RolloutStore(directory / STORE_FILE, create=False) as store:
        for r in store.records(prefix):
            if r.status == "completed" and len(r.perturbations) <= 1:
                c = out.setdefault(r.perturbations[0] if r.perturbations else "nominal", [0, 0])
                c[0] += not r.success
                c[1] += 1
    return {n: (k, n_) for n, (k, n_) in out.items()}


@pytest.fixture(scope="module")
def dirs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("compare")
    cfg = load_campaign(write_campaign(root, name="toy_campaign", policy="policy_c", budget=20))
    return {"a": sweep(root, "sweep_a", "policy_a", RATES_A),
            "b": sweep(root, "sweep_b", "policy_b", RATES_B),
            "campaign": run_campaign(cfg, progress=False).out_dir}


@pytest.fixture(scope="module")
def written(dirs, tmp_path_factory) -> tuple[dict, list[Path]]:
    comparison = compare([dirs["a"], dirs["b"], dirs["campaign"]])
    return comparison, write_comparison(comparison, tmp_path_factory.mktemp("out"))


def test_figures_json_and_a_self_contained_page_are_written(written):
    comparison, paths = written
    names = {p.name for p in paths}
    assert names == {"compare.json", "compare.html", *FIGURES}
    for p in paths:
        if p.suffix == ".png":
            assert p.read_bytes().startswith(b"\x89PNG"), p
    page = next(p for p in paths if p.name == "compare.html").read_text()
    embedded = [base64.b64decode(m) for m in re.findall(r"base64,([A-Za-z0-9+/=]+)", page)]
    assert len(embedded) == len(FIGURES) and all(e.startswith(b"\x89PNG") for e in embedded)
    assert "<script" not in page and not re.search(r'(src|href)="https?:', page)
    assert json.loads(next(p for p in paths if p.name == "compare.json").read_text()) == comparison


def test_labels_are_the_stored_policy_specs(written):
    comparison, _ = written
    assert [p["label"] for p in comparison["policies"]] == ["policy_a", "policy_b", "policy_c"]
    assert [p["interval"] for p in comparison["policies"]] == ["wilson", "wilson",
                                                               "anytime-valid"]


def test_rates_and_intervals_are_those_of_the_stored_rollouts(dirs, written):
    comparison, _ = written
    conf = comparison["confidence"]
    stored = {"policy_a": counted(dirs["a"], "sweep/"), "policy_b": counted(dirs["b"], "sweep/"),
              "policy_c": counted(dirs["campaign"], "agent/")}
    assert stored["policy_a"]["a"] == (ROLLOUTS, ROLLOUTS) and stored["policy_b"]["a"] == (
        0, ROLLOUTS)
    checked = 0
    for row in comparison["perturbations"]:
        for label, rate in row["rates"].items():
            if row["name"] not in stored[label]:
                assert rate is None
                continue
            k, n = stored[label][row["name"]]
            lo_hi = (confidence_sequence(k, n, 1 - conf) if label == "policy_c"
                     else wilson_interval(k, n, conf))
            assert (rate["failures"], rate["trials"]) == (k, n)
            assert (rate["lo"], rate["hi"]) == pytest.approx(lo_hi)
            checked += 1
    assert checked == 2 * 6 + 5  # the sweeps' nominal scene and five perturbations; the campaign's


def test_a_clear_difference_is_flagged_and_an_equal_rate_is_not(written):
    comparison, _ = written
    tests = {(t["perturbation"], t["a"], t["b"]): t for t in comparison["tests"]}
    assert tests["a", "policy_a", "policy_b"]["significant"]
    equal = tests["b", "policy_a", "policy_b"]
    assert equal["rate_a"] == equal["rate_b"] and not equal["significant"]
    assert all(not t["significant"] for key, t in tests.items() if key[0] in ("d", "e")
               and key[1:] == ("policy_a", "policy_b"))
    # below 0.05 alone, but not after Holm's adjustment over the whole family of tests
    corrected = tests["c", "policy_a", "policy_c"]
    assert corrected["p_value"] < 0.05 <= corrected["p_adjusted"] and not corrected["significant"]
    adjusted = holm_adjust([t["p_value"] for t in comparison["tests"]])
    assert [t["p_adjusted"] for t in comparison["tests"]] == adjusted
    assert comparison["correction"] == "Holm"


def test_failure_distribution_sums_to_one_over_the_common_perturbations(written):
    comparison, _ = written
    assert comparison["overlap"]["common"] == ["a", "b", "c", "d", "e"]
    assert "nominal" in comparison["overlap"]["compared"]  # the two sweeps measured it
    for p in comparison["policies"]:
        assert sum(p["failure_share"].values()) == pytest.approx(1.0)
        assert p["entropy"] >= 0.0


def test_rows_follow_the_sweep_table_not_the_order_rollouts_finished(dirs, tmp_path):
    copy = tmp_path / "finished_in_reverse"
    copy.mkdir()
    shutil.copy(dirs["b"] / "failure_rates.json", copy)
    with RolloutStore(dirs["b"] / STORE_FILE, create=False) as src, \
            RolloutStore(copy / STORE_FILE) as dst:
        dst.set_meta(META_KEY, src.get_meta(META_KEY))
        for r in reversed(src.records()):  # as parallel workers may finish them
            dst.add(r)
    rows = compare([copy, dirs["a"]])["perturbations"]
    assert [r["name"] for r in rows] == ["nominal", "a", "b", "c", "d", "e"]


def test_holm_adjust():
    assert holm_adjust([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm_adjust([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_same_spec_is_told_apart_by_directory_and_missing_spec_falls_back_to_it(dirs, tmp_path):
    again = sweep(tmp_path, "rerun_a", "policy_a", RATES_A, rollouts=2)
    unnamed = sweep(tmp_path, "unnamed", "", RATES_B, rollouts=2)
    labels = [p["label"] for p in compare([dirs["a"], again, unnamed])["policies"]]
    assert labels == ["policy_a (sweep_a)", "policy_a (rerun_a)", "unnamed"]


def test_command_line(dirs, tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", str(dirs["a"]), str(dirs["b"]), "--out", str(out),
                 "--confidence", "0.9"]) == 0
    printed = capsys.readouterr().out
    assert "a: policy_a 1.00 vs policy_b 0.00" in printed
    data = json.loads((out / "compare.json").read_text())
    assert data["confidence"] == 0.9
    row = next(r for r in data["perturbations"] if r["name"] == "b")["rates"]["policy_a"]
    assert (row["lo"], row["hi"]) == pytest.approx(wilson_interval(row["failures"],
                                                                   row["trials"], 0.9))
    assert main(["compare", str(dirs["a"]), "--out", str(out)]) == 2
    assert "at least two directories" in capsys.readouterr().err


def test_fewer_than_two_directories_are_refused(dirs):
    with pytest.raises(CompareError, match=r"at least two directories .*got 1: .*sweep_a"):
        compare([dirs["a"]])


def test_a_directory_that_is_neither_campaign_nor_sweep_is_refused(dirs, tmp_path):
    with pytest.raises(CompareError, match=rf"{re.escape(str(tmp_path))} is neither a campaign"):
        compare([dirs["a"], tmp_path])
    with pytest.raises(CompareError, match="missing is not a directory"):
        compare([dirs["a"], tmp_path / "missing"])


def test_different_tasks_are_refused(dirs, tmp_path):
    other = sweep(tmp_path, "other_task", "policy_a", RATES_A, task="stack", rollouts=2)
    with pytest.raises(CompareError, match=r"different tasks .*other_task is 'stack'"):
        compare([dirs["a"], other])


def test_no_perturbation_in_common_is_refused(dirs, tmp_path):
    disjoint = sweep(tmp_path, "disjoint", "policy_x", {"x": 0.5, "y": 0.5}, rollouts=2)
    with pytest.raises(CompareError, match=r"no perturbation is measured under two .*"
                                           r"disjoint measured 2 \(x, y"):
        compare([dirs["a"], disjoint])


def test_different_stored_confidences_need_a_choice(dirs, tmp_path):
    cfg = load_campaign(write_campaign(tmp_path, name="c90", confidence=0.9, budget=5))
    campaign = run_campaign(cfg, progress=False).out_dir
    with pytest.raises(CompareError, match="different confidences .*--confidence"):
        compare([dirs["a"], campaign])
    assert compare([dirs["a"], campaign], confidence=0.9)["confidence"] == 0.9
