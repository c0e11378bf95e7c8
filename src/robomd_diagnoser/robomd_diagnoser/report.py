"""Reports of finished campaigns: ``report.json`` and a self-contained ``report.html``.

Per campaign: a radar plot of P_fail (the paper's Fig. 7), a bar chart of P_fail next to the
observed failure rates with anytime-valid intervals, the ranked table (P_fail, observed rate,
interval, decision or prediction, trials, links to videos of failing rollouts), entropy, number
of failure modes, FSI, the factor-level effects and strongest interactions when the space has
factor structure, for a real robot which perturbations the operator made (physical) and which
ran without one (digital), and, given a ground-truth sweep, pairwise accuracy and Kendall's tau.
With several campaigns, a heatmap of P_fail and one of the observed rates (perturbations x
campaigns). Images are embedded as base64 PNG, so the HTML file can be mailed or archived alone.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from robomd_diagnoser.analysis import Diagnosis, GroundTruth, diagnose
from robomd_diagnoser.campaign import RESULT_FILE, STORE_FILE, result_catalog, within_budget
from robomd_diagnoser.catalog import CatalogError
from robomd_diagnoser.diagnosis_env import KEY_PREFIX
from robomd_diagnoser.store import RolloutStore, StoreError

#: Written by the diagnoser node: which transport and nodes served a campaign run over ROS 2.
TRANSPORT_FILE = "transport.json"


class ReportError(ValueError):
    """A campaign directory cannot be reported on; the message says why and what to do."""


#: The keys of ``diagnosis.json`` a report reads, with their types.
_RESULT_KEYS = {"name": str, "task": str, "policy": str, "agent": str, "world": str,
                "budget": int, "catalog": list, "p_fail": dict, "diagnosis": dict}


def _read_result(path: Path) -> dict:
    """``diagnosis.json``, checked for what a report reads; errors name the file and the key."""
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path} is not valid JSON ({exc}); the file is damaged or truncated: "
                          "rerun `robomd diagnose` with the same config to rewrite it") from None
    if not isinstance(result, dict):
        raise ReportError(f"{path}: expected a JSON object, got {type(result).__name__}")
    for key, kind in _RESULT_KEYS.items():
        if not isinstance(result.get(key), kind):
            raise ReportError(f"{path}: key {key!r} is missing or not a {kind.__name__}; rerun "
                              "`robomd diagnose` with the same config to rewrite it")
    missing = [f for f in Diagnosis.__dataclass_fields__ if f not in result["diagnosis"]]
    if missing:
        raise ReportError(f"{path}: diagnosis.{missing[0]} is missing; rerun `robomd diagnose` "
                          "with the same config to rewrite it")
    try:
        catalog = result_catalog(result, f"{path} (catalog)")
    except CatalogError as exc:
        raise ReportError(str(exc)) from None
    absent = [n for n in catalog.names if not isinstance(result["p_fail"].get(n), (int, float))]
    if absent:
        raise ReportError(f"{path}: p_fail has no value for {absent[0]!r}")
    return result


def load_result(campaign_dir: str | Path, ground_truth: GroundTruth | None = None) -> dict:
    """A campaign's ``diagnosis.json``, re-scored against ``ground_truth`` when given.

    The campaign's rollout store must be there and intact (it is opened read-only, never
    created): a report is not written over a damaged or missing record of the rollouts.

    :param campaign_dir: the campaign directory.
    :param ground_truth: a sweep to score the ranking against.
    :raises ReportError: if the campaign has no result yet, or its files are damaged.
    """
    campaign_dir = Path(campaign_dir)
    path = campaign_dir / RESULT_FILE
    if not path.is_file():
        raise ReportError(f"{campaign_dir} has no {RESULT_FILE}: the campaign has not finished; "
                          "run `robomd diagnose --config ... --out DIR` to finish it")
    result = _read_result(path)
    try:
        with RolloutStore(campaign_dir / STORE_FILE, create=False) as store:
            records = store.records(KEY_PREFIX)
    except StoreError as exc:
        raise ReportError(str(exc)) from None
    result["dir"] = str(campaign_dir.resolve())
    transport = campaign_dir / TRANSPORT_FILE
    result["transport"] = json.loads(transport.read_text()) if transport.is_file() else None
    if ground_truth is not None:
        catalog = result_catalog(result, str(path))
        p = [result["p_fail"][n] for n in catalog.names]
        campaign = result.get("campaign", {})
        # the agent's predictions are not recomputed: the stored ones go back in
        stored = [_StoredPrediction(m["prediction"]) for m in result["diagnosis"]["modes"]
                  if m.get("prediction")]
        workers = campaign.get("workers", 1)
        result["diagnosis"] = diagnose(catalog, p, within_budget(records, result["budget"],
                                                                 workers),
                                       ground_truth, threshold=campaign.get("threshold", 0.5),
                                       confidence=campaign.get("confidence", 0.95),
                                       predictions=stored,
                                       levels=catalog.member_levels() if catalog.space else None
                                       ).to_dict()
    return result


class _StoredPrediction:
    """A prediction as ``diagnosis.json`` stored it (``Prediction.to_dict``)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.index = int(data["index"])
        self._data = data

    def to_dict(self) -> dict[str, Any]:
        return self._data


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


#: The charts show at most this many modes (the most likely ones of a larger space).
RADAR_MAX = 24
#: The radar of a larger space shows fewer: its labels take two lines (one level a line).
RADAR_SPACE = 16


def radar_png(result: dict) -> str:
    """Radar plot of P_fail over the catalog, catalog order (base64 PNG).

    :param result: a loaded campaign result.
    """
    plt = _plt()
    every = list(result["p_fail"])  # catalog order, a space's members included
    if len(every) > RADAR_MAX:  # a space: its most likely modes, in catalog order
        top = set(sorted(every, key=lambda n: -result["p_fail"][n])[:RADAR_SPACE])
        names = [n for n in every if n in top]
    else:
        names = every
    values = np.array([result["p_fail"][n] for n in names])
    angles = np.linspace(0, 2 * np.pi, len(names), endpoint=False)
    fig = plt.figure(figsize=(7.5, 7.5))
    ax = fig.add_subplot(projection="polar")
    ax.plot(np.append(angles, angles[0]), np.append(values, values[0]), color="tab:red", lw=1.5)
    ax.fill(angles, values, color="tab:red", alpha=0.25)
    ax.plot(np.append(angles, angles[0]), np.full(len(names) + 1, 1 / len(every)), "k--", lw=0.8,
            label="uniform 1/N")
    # a space's member names join levels with "+": one level a line keeps the labels short
    ax.set_xticks(angles, [f"A{every.index(n) + 1} " + n.replace("+", "+\n") for n in names],
                  fontsize=8)
    ax.tick_params(axis="x", pad=10)
    ax.set_ylim(0, max(values.max() * 1.1, 1.5 / len(every)))
    ax.tick_params(axis="y", labelsize=8)
    d = result["diagnosis"]
    shown = "" if len(names) == len(every) else f" (top {len(names)} of {len(every)})"
    ax.set_title(f"{result['name']}: P_fail ({result['agent']}){shown}\nentropy "
                 f"{d['entropy']:.2f} nats, FSI {d['fsi']:.2f}", fontsize=11)
    ax.legend(loc="lower right", bbox_to_anchor=(1.15, -0.08), fontsize=8)
    return _png(fig)


def bars_png(result: dict) -> str:
    """P_fail (left) and observed failure rate with 95% interval (right), ranked (base64 PNG).

    :param result: a loaded campaign result.
    """
    plt = _plt()
    every = result["diagnosis"]["modes"]
    modes = every[:RADAR_MAX]  # ranked: a space's most likely modes
    ys = np.arange(len(modes))[::-1]
    fig, (ax1, ax2) = plt.subplots(1, 2, sharey=True, figsize=(10, 1.0 + 0.3 * len(modes)))
    ax1.barh(ys, [m["p_fail"] for m in modes], color="tab:red", alpha=0.8)
    ax1.axvline(1 / len(every), color="k", ls="--", lw=0.8, label="uniform 1/N")
    ax1.set_yticks(ys, [m["name"] for m in modes], fontsize=9)
    ax1.set_xlabel("P_fail\n(agent, sums to 1)")
    ax1.legend(fontsize=8, loc="lower right")
    tried = [(y, m) for y, m in zip(ys, modes, strict=True) if m["trials"]]
    if tried:
        rates = np.array([m["rate"] for _, m in tried])
        err = np.array([[r - m["lo"], m["hi"] - r] for r, (_, m) in zip(rates, tried,
                                                                            strict=True)]).T
        ax2.errorbar(rates, [y for y, _ in tried], xerr=err, fmt="o", color="tab:blue",
                     capsize=3, ms=5)
        for y, m in tried:
            ax2.annotate(f"{m['failures']}/{m['trials']}", (1.02, y), fontsize=8, va="center",
                         annotation_clip=False)
    for y, m in zip(ys, modes, strict=True):
        if not m["trials"]:
            ax2.annotate("not tried", (0.01, y), fontsize=8, va="center", color="grey")
    ax2.set_xlim(0, 1)
    conf = result["diagnosis"].get("confidence", 0.95)
    ax2.set_xlabel(f"observed failure rate\n{conf:.0%} anytime-valid interval "
                   "(single-perturbation rollouts)")
    ax2.grid(axis="x", alpha=0.3)
    fig.suptitle(f"{result['name']}: failure likelihood vs observed failure rate", fontsize=11)
    fig.tight_layout()
    return _png(fig)


def heatmap_png(results: list[dict], key: str) -> str:
    """Perturbations x campaigns heatmap of ``p_fail`` or ``rate`` (base64 PNG).

    :param results: loaded campaign results (same catalog names are matched by name).
    :param key: ``p_fail`` or ``rate``.
    """
    plt = _plt()
    names = list(dict.fromkeys(p["name"] for r in results for p in r["catalog"]))
    grid = np.full((len(names), len(results)), np.nan)
    for j, r in enumerate(results):
        by_name = {m["name"]: m for m in r["diagnosis"]["modes"]}
        for i, n in enumerate(names):
            if n in by_name and by_name[n][key] is not None:
                grid[i, j] = by_name[n][key]
    fig, ax = plt.subplots(figsize=(2.5 + 1.3 * len(results), 1.2 + 0.32 * len(names)))
    vmax = 1.0 if key == "rate" else max(np.nanmax(grid), 1e-9)
    im = ax.imshow(grid, cmap="Reds", vmin=0, vmax=vmax, aspect="auto")
    for (i, j), v in np.ndenumerate(grid):
        if not np.isnan(v):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if v > 0.6 * vmax else "black")
    labels = [r["name"] for r in results]
    labels = [f"{n} ({Path(r['dir']).name})" if labels.count(n) > 1 else n
              for n, r in zip(labels, results, strict=True)]
    ax.set_xticks(range(len(results)), labels, rotation=20, ha="right", fontsize=9)
    ax.set_yticks(range(len(names)), names, fontsize=9)
    label = "P_fail" if key == "p_fail" else "observed failure rate"
    fig.colorbar(im, ax=ax, label=label, fraction=0.05)
    ax.set_title(f"{label} across campaigns", fontsize=11)
    fig.tight_layout()
    return _png(fig)


def _fmt(v: Any, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)


#: Who applied a real robot's perturbation, by its ``physical`` flag in ``diagnosis.json``.
_MADE_BY = {True: "operator (physical)", False: "executor (digital)"}


def _campaign_html(result: dict, report_dir: Path, images: dict[str, str]) -> str:
    d = result["diagnosis"]
    esc = html.escape
    physical = result.get("physical")
    rows = []
    for i, m in enumerate(d["modes"], 1):
        links = " ".join(
            f'<a href="{esc(os.path.relpath(Path(result["dir"]) / v, report_dir))}">'
            f"{k + 1}</a>" for k, v in enumerate(m["videos"][:5]))
        decision = esc(m.get("decision", "undecided"))
        pred = m.get("prediction")
        if pred and decision == "undecided":
            evidence = ", ".join(f"{esc(e['level'])} {e['effect']:+.1f}" for e in pred["evidence"])
            decision = (f"<i>predicted {esc(pred['decision'])}</i> (P(rate &ge; threshold) "
                        f"{pred['probability']:.2f}; level effects {evidence})")
        rows.append(f"<tr><td>{i}</td><td>{esc(m['name'])}</td><td>{esc(m['text'])}</td>"
                    f"<td>{m['p_fail']:.3f}</td><td>{_fmt(m['rate'], 2)}</td>"
                    f"<td>[{m['lo']:.2f}, {m['hi']:.2f}]</td><td>{decision}</td>"
                    f"<td>{m['failures']}/{m['trials']}"
                    f"</td><td>{m['excluded']}</td><td>{links}</td>"
                    + (f"<td>{_MADE_BY[physical[m['name']]]}</td>" if physical else "")
                    + "</tr>")
    acc = d.get("accuracy")
    acc_html = ""
    if acc:
        acc_html = (f"<p>Against <code>{esc(acc['ground_truth'])}</code> ({acc['pairs']} pairs "
                    f"with true rates &ge; {acc['min_gap']} apart): pairwise accuracy of P_fail "
                    f"<b>{_fmt(acc['pairwise_accuracy'])}</b>, Kendall &tau; "
                    f"<b>{_fmt(acc['kendall_tau'])}</b>; of the observed rates "
                    f"{_fmt(acc['observed_pairwise_accuracy'])} and "
                    f"{_fmt(acc['observed_kendall_tau'])}.</p>")
        fm = acc.get("failure_modes")
        if fm:
            refuted = ", ".join(f"{esc(r['name'])} (true rate {r['true_rate']:.2f}"
                                + (", predicted" if r["predicted"] else "") + ")"
                                for r in fm["refuted"][:10])
            acc_html += (f"<p>Failure modes (true rate &ge; {fm['threshold']}): of the "
                         f"<b>{fm['reported']}</b> reported among the ground truth's members, "
                         f"<b>{len(fm['confirmed'])}</b> are confirmed by it "
                         f"({sum(r['predicted'] for r in fm['confirmed'])} of them predicted), "
                         f"{len(fm['refuted'])} refuted{': ' + refuted if refuted else ''}; "
                         f"they are {len(fm['confirmed'])} of its {fm['truth_failure_modes']}"
                         f" failure modes"
                         + (f"; {fm['outside']} reported members are outside it"
                            if fm["outside"] else "") + ".</p>")
    factors = _factors_html(d)
    combos = "".join(f"<li>{esc(' + '.join(c['perturbations']))}: {c['failures']}/{c['n']} "
                     "failed</li>" for c in d["combinations"])
    operator_html = ""
    if physical:
        n_physical = sum(bool(v) for v in physical.values())
        operator_html = (f"<p>Real robot: <b>{n_physical}</b> of {len(physical)} perturbations "
                         "are physical (the operator makes them when prompted), <b>"
                         f"{len(physical) - n_physical}</b> digital (applied to the camera "
                         "image or the policy's actions by the policy executor, no operator); "
                         "see the table's last column.</p>")
    served = result.get("transport")
    served_html = (f"<p>Rollouts came over <b>{esc(served['transport'])}</b>, served by the nodes "
                   f"{', '.join(f'<code>{esc(n)}</code>' for n in served['nodes'])}.</p>"
                   if served else "<p>Rollouts ran in-process (no ROS 2 graph).</p>")
    return f"""
<h2>{esc(result['name'])}</h2>
<p>Task <b>{esc(result['task'])}</b>, policy <b>{esc(result['policy'])}</b>, agent
<b>{esc(result['agent'])}</b>, world <b>{esc(result['world'])}</b>, budget {result['budget']}
rollouts; {d['rollouts_completed']} judged, {d['rollouts_aborted']} not completed (never counted
as failures). Directory <code>{esc(result['dir'])}</code>.</p>
{served_html}
{operator_html}
<p>Entropy <b>{d['entropy']:.3f}</b> nats (max {np.log(len(d['modes'])):.3f});
failure modes <b>{d['num_failure_modes']}</b> (P_fail &gt; 1/N), <b>
{d['num_confirmed_failure_modes']}</b> confirmed (observed 95% lower bound &ge; 0.25);
FSI <b>{d['fsi']:.3f}</b>.</p>
{acc_html}
<img alt="radar" src="data:image/png;base64,{images['radar']}" style="max-width:48%">
<img alt="bars" src="data:image/png;base64,{images['bars']}" style="max-width:100%">
<table><tr><th>rank</th><th>perturbation</th><th>description</th><th>P_fail</th>
<th>observed rate</th><th>{d.get('confidence', 0.95):.0%} anytime-valid interval</th>
<th>decision (threshold {d.get('threshold', 0.5)})</th><th>failed/trials</th>
<th>not completed</th><th>failing videos</th>{'<th>made by</th>' if physical else ''}</tr>
{''.join(rows)}</table>
{factors}
<details><summary>Accumulated perturbation sets ({len(d['combinations'])})</summary>
<ul>{combos}</ul></details>
"""


def _factors_html(d: dict) -> str:
    """Level effects (which levels raise failure) and the strongest interactions."""
    esc = html.escape
    out = ""
    effects = d.get("level_effects") or []
    if effects:
        rows = "".join(
            f"<tr><td>{esc(e['family'])}</td><td>{esc(e['level'])}</td><td>{e['effect']:+.2f}"
            f"</td><td>[{e['lo']:+.2f}, {e['hi']:+.2f}]</td><td>{e['members_tried']}</td>"
            f"<td>{'yes' if e['raises_failure'] else ''}</td></tr>" for e in effects)
        out += ("<h3>Factor-level effects</h3><p>Main effects on the failure logit of an "
                "additive model over the levels, with 95% credible intervals (model-based, not "
                "anytime-valid). A level raises failure when its interval lies above 0.</p>"
                "<table><tr><th>family</th><th>level</th><th>effect</th><th>interval</th>"
                f"<th>members tried</th><th>raises failure</th></tr>{rows}</table>")
    inter = d.get("interactions") or []
    if inter:
        rows = ""
        for r in inter:
            singles = ", ".join(f"{esc(s['name'])} {s['rate']:.2f}" for s in r["singles"])
            rows += (f"<tr><td>{esc(r['name'])}</td><td>{r['rate']:.2f} [{r['lo']:.2f}, "
                     f"{r['hi']:.2f}]</td><td>{singles}</td></tr>")
        out += ("<h3>Strongest interactions</h3><p>Combinations whose interval lies above the "
                "intervals of all their single levels: they fail where their parts do not.</p>"
                "<table><tr><th>member</th><th>rate [interval]</th><th>singles (rate)</th></tr>"
                f"{rows}</table>")
    return out


_STYLE = """body{font-family:sans-serif;margin:2em;max-width:1100px}
table{border-collapse:collapse;font-size:0.9em}td,th{border:1px solid #ccc;padding:3px 6px}
th{background:#eee}code{background:#f4f4f4}.note{background:#fff8e0;padding:0.6em}"""


def write_report(results: list[dict], out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.json`` and ``report.html`` for loaded campaign results.

    :param results: from :func:`load_result`.
    :param out_dir: where to write (created).
    :returns: the two paths.
    """
    if not results:
        raise ReportError("no campaign to report on")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "report.json"
    json_path.write_text(json.dumps({"campaigns": results}, indent=2))
    parts = [_campaign_html(r, out_dir.resolve(), {"radar": radar_png(r), "bars": bars_png(r)})
             for r in results]
    cross = ""
    if len(results) > 1:
        cross = (f'<h2>Across campaigns</h2><img alt="P_fail heatmap" src="data:image/png;base64,'
                 f'{heatmap_png(results, "p_fail")}" style="max-width:49%">'
                 f'<img alt="rate heatmap" src="data:image/png;base64,'
                 f'{heatmap_png(results, "rate")}" style="max-width:49%">')
    doc = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>RoboMD report</title>
<style>{_STYLE}</style></head><body><h1>RoboMD diagnosis report</h1>
<p class="note">P_fail is the agent's failure likelihood (softmax of its logits at the nominal
scene, Eq. 3 of the paper). It sums to 1 across the perturbations, so it ranks failure modes but
cannot say that a perturbation never fails; read it next to the observed failure rates and their
anytime-valid intervals (valid however the agent chose where to sample and when the campaign
stopped), measured on this campaign's single-perturbation rollouts, and the decision each
supports.</p>
{cross}{''.join(parts)}</body></html>"""
    html_path = out_dir / "report.html"
    html_path.write_text(doc)
    return json_path, html_path
