"""robomd report: report.json and a self-contained report.html from finished campaigns."""

from __future__ import annotations

import base64
import json
import re

import pytest
from diagnosis_fixtures import write_campaign

from robomd_diagnoser.analysis import load_ground_truth
from robomd_diagnoser.campaign import RESULT_FILE, run_campaign
from robomd_diagnoser.config import load_campaign
from robomd_diagnoser.report import ReportError, load_result, write_report


@pytest.fixture(scope="module")
def campaigns(tmp_path_factory):
    dirs = []
    for agent in ("uniform", "thompson"):
        tmp = tmp_path_factory.mktemp(agent)
        cfg = load_campaign(write_campaign(tmp, name=f"toy_{agent}", agent={"type": agent},
                                           budget=25))
        dirs.append(run_campaign(cfg, progress=False).out_dir)
    return dirs


def images(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r"base64,([A-Za-z0-9+/=]+)", html)]


def test_single_campaign_report(campaigns, tmp_path):
    json_path, html_path = write_report([load_result(campaigns[0])], tmp_path)
    html = html_path.read_text()
    pngs = images(html)
    assert len(pngs) == 2 and all(p.startswith(b"\x89PNG") for p in pngs)  # radar + bars
    assert "toy_uniform" in html and "sums to 1" in html and "Entropy" in html
    assert html.count("<tr><td>") == 5, "one ranked row per perturbation"
    data = json.loads(json_path.read_text())["campaigns"][0]
    assert data["diagnosis"]["modes"][0]["rank"] == 1
    assert data["diagnosis"]["accuracy"] is None


def test_several_campaigns_add_heatmaps_and_ground_truth_adds_accuracy(campaigns, tmp_path):
    truth = load_ground_truth(campaigns[0].parent / "failure_rates.json")
    results = [load_result(d, truth) for d in campaigns]
    _, html_path = write_report(results, tmp_path)
    html = html_path.read_text()
    assert len(images(html)) == 2 * 2 + 2  # per campaign radar + bars, two heatmaps
    assert "pairwise accuracy" in html and "Kendall" in html
    acc = results[0]["diagnosis"]["accuracy"]
    assert 0.0 <= acc["pairwise_accuracy"] <= 1.0 and acc["pairs"] == 9


def test_failing_rollout_videos_are_linked(campaigns, tmp_path):
    result = load_result(campaigns[0])
    result["diagnosis"]["modes"][0]["videos"] = ["videos/000003_0.mp4"]
    _, html_path = write_report([result], tmp_path)
    assert re.search(r'href="[^"]*videos/000003_0\.mp4"', html_path.read_text())


def test_unfinished_campaign_is_explained(tmp_path):
    with pytest.raises(ReportError, match=f"no {RESULT_FILE}.*robomd diagnose"):
        load_result(tmp_path)


def test_factor_effects_interactions_and_decisions_are_reported(campaigns, tmp_path):
    from diagnosis_fixtures import catalog

    from robomd_diagnoser.analysis import diagnose
    from robomd_diagnoser.store import RolloutRecord

    # a, b: single levels that never fail; c = a's level + b's level always fails
    levels = [(("f", "x"),), (("g", "y"),), (("f", "x"), ("g", "y")), (("f", "z"),),
              (("f", "z"), ("g", "y"))]
    fails = {"a": 0, "b": 0, "c": 12, "d": 12, "e": 12}
    records = [RolloutRecord(f"{n}{i}", (n,), i, "completed", i >= k, 10, 0.1)
               for n, k in fails.items() for i in range(12)]
    d = diagnose(catalog(), [0.2] * 5, records, levels=levels)
    assert [r["name"] for r in d.interactions] == ["c"]
    assert d.level_effects[0]["level"] == "z"
    result = load_result(campaigns[0])
    result["diagnosis"] = d.to_dict()
    _, html_path = write_report([result], tmp_path)
    html = html_path.read_text()
    assert "Factor-level effects" in html and "Strongest interactions" in html
    assert "anytime-valid interval" in html and html.count(">failure mode<") == 3


def test_charts_of_a_large_space_show_its_most_likely_modes(monkeypatch):
    """A space has thousands of members: the charts keep the top ones, not all of them."""
    from robomd_diagnoser import report

    names = [f"m{i}" for i in range(report.RADAR_MAX + 10)]
    p_fail = {n: (i + 1) / 1000 for i, n in enumerate(names)}  # the last members are likeliest
    modes = [{"name": n, "p_fail": p_fail[n], "rate": 0.5, "lo": 0.0, "hi": 1.0,
              "trials": i % 3, "failures": 0}
             for i, n in enumerate(sorted(names, key=lambda n: -p_fail[n]))]
    result = {"name": "space", "agent": "factor", "catalog": [],  # its singles: none
              "p_fail": p_fail, "diagnosis": {"entropy": 1.0, "fsi": 1.0, "modes": modes}}
    ticks: list[list[str]] = []
    real_subplot = report._plt().Figure.add_subplot

    def spy(fig, *args, **kwargs):
        ax = real_subplot(fig, *args, **kwargs)
        original = ax.set_xticks
        ax.set_xticks = lambda pos, labels=None, **kw: (ticks.append(list(labels or [])),
                                                         original(pos, labels, **kw))[1]
        return ax

    monkeypatch.setattr(report._plt().Figure, "add_subplot", spy)
    assert base64.b64decode(report.radar_png(result)).startswith(b"\x89PNG")
    assert len(ticks[-1]) == report.RADAR_SPACE
    assert all(label.split()[1] in names[-report.RADAR_SPACE:] for label in ticks[-1])
    assert base64.b64decode(report.bars_png(result)).startswith(b"\x89PNG")


def test_a_real_campaign_says_who_made_each_perturbation(campaigns, tmp_path):
    result = load_result(campaigns[0])
    assert "physical" not in result, "only a real robot's result says it"
    _, html_path = write_report([result], tmp_path / "sim")
    assert "made by" not in html_path.read_text()
    result["physical"] = {"a": True, "b": True, "c": False, "d": False, "e": False}
    _, html_path = write_report([result], tmp_path / "real")
    html = html_path.read_text()
    assert "<b>2</b> of 5 perturbations are physical" in html and "<th>made by</th>" in html
    rows = {m.group(1): m.group(2) for m in re.finditer(
        r"<tr><td>\d+</td><td>(\w)</td>.*?<td>(operator \(physical\)|executor \(digital\))</td>"
        r"</tr>", html)}
    assert rows == {"a": "operator (physical)", "b": "operator (physical)",
                    "c": "executor (digital)", "d": "executor (digital)",
                    "e": "executor (digital)"}
