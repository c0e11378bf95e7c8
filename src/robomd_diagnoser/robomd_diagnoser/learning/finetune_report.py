"""The before/after comparison of a fine-tuning run: ``finetune.html`` beside ``finetune.json``.

A radar plot of the failure rates per perturbation for every evaluated policy with the ideal
all-zero distribution dashed (the paper's Fig. 8), bars of success per scene with Wilson 95%
intervals, and the headline table (success under the top modes, nominal success, Wasserstein
distance to the ideal). Images are embedded as base64 PNG like the campaign report's.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from robomd_diagnoser.report import _STYLE, _plt, _png

COLORS = {"before": "tab:red", "targeted": "tab:green", "uniform": "tab:blue"}


def radar_png(result: dict[str, Any]) -> str:
    """Failure rate per evaluated perturbation, one closed line per policy, ideal dashed.

    :param result: the content of ``finetune.json``.
    """
    plt = _plt()
    names = result["evaluation"]["perturbations"]
    angles = np.linspace(0, 2 * np.pi, len(names), endpoint=False)
    closed = np.append(angles, angles[0])
    fig = plt.figure(figsize=(7.5, 7.5))
    ax = fig.add_subplot(projection="polar")
    for label, res in result["policies"].items():
        # a perturbation without a completed rollout has no rate: a gap, not a 0
        v = np.array([res["failure_distribution"].get(n, np.nan) for n in names])
        ax.plot(closed, np.append(v, v[0]), color=COLORS.get(label), lw=1.5,
                label=f"{label} (W1 to ideal {_w1(res)})")
        ax.fill(angles, v, color=COLORS.get(label), alpha=0.12)
    ax.plot(closed, np.zeros(len(closed)), "k--", lw=1.2, label="ideal (no failures)")
    ax.set_xticks(angles, [f"A{i + 1} {n}" for i, n in enumerate(names)], fontsize=8)
    ax.set_ylim(0, 1)
    ax.tick_params(axis="y", labelsize=8)
    ax.set_title(f"{result['task']}: failure rate per perturbation before and after fine-tuning",
                 fontsize=11)
    ax.legend(loc="lower right", bbox_to_anchor=(1.2, -0.12), fontsize=8)
    return _png(fig)


def bars_png(result: dict[str, Any]) -> str:
    """Success rate per scene (nominal first) and policy, with Wilson 95% intervals.

    :param result: the content of ``finetune.json``.
    """
    plt = _plt()
    policies = result["policies"]
    labels = list(policies)
    scenes = ["nominal"] + result["evaluation"]["perturbations"]
    height = 0.8 / len(labels)
    fig, ax = plt.subplots(figsize=(9, 1.2 + 0.3 * len(scenes) * len(labels)))
    ys = np.arange(len(scenes))[::-1].astype(float)
    for j, label in enumerate(labels):
        res = policies[label]
        by_name = {r["name"]: r for r in res["per_perturbation"]}
        cells = [res["nominal"]] + [by_name[n] for n in scenes[1:]]
        rates = np.array([c["rate"] or 0.0 for c in cells])
        err = np.array([[r - c["lo"], c["hi"] - r] for r, c in zip(rates, cells, strict=True)]).T
        ax.barh(ys + (len(labels) / 2 - j - 0.5) * height, rates, height=height, xerr=err,
                color=COLORS.get(label), alpha=0.8, capsize=2, error_kw={"lw": 0.8}, label=label)
    top = set(result["top_modes"])
    ax.set_yticks(ys, [f"{s} *" if s in top else s for s in scenes], fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("success rate (Wilson 95% interval); * = a top failure mode fine-tuned on")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return _png(fig)


def _cell(s: dict[str, Any]) -> str:
    if not s["n"]:
        return "-"
    return f"{s['rate']:.2f} [{s['lo']:.2f}, {s['hi']:.2f}] ({s['successes']}/{s['n']})"


def _w1(res: dict) -> str:
    w = res["wasserstein_to_ideal"]
    return "-" if w is None else f"{w:.4f}"


def write_html(result: dict[str, Any], out_dir: str | Path) -> Path:
    """Write ``finetune.html`` for a fine-tuning result.

    :param result: the content of ``finetune.json``.
    :param out_dir: the fine-tuning directory.
    :returns: the HTML path.
    """
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(label)}</td><td><code>{esc(res['policy'])}</code></td>"
        f"<td>{_cell(res['top_modes'])}</td><td>{_cell(res['nominal'])}</td>"
        f"<td>{_cell(res['catalog'])}</td><td>{_w1(res)}</td></tr>"
        for label, res in result["policies"].items())
    strategies = "".join(
        f"<li><b>{esc(s)}</b>: {info['new_episodes']} new episodes "
        f"({esc(', '.join(f'{k} x{v}' for k, v in info['demos'].items()))}) + "
        f"{info['replay_episodes']} replay ({esc(info['replay_source'])}); {info['epochs']} "
        f"epochs from <code>{esc(info['parent'])}</code></li>"
        for s, info in result["strategies"].items())
    ev = result["evaluation"]
    summary = result["summary"]
    gain, gain_ci = summary["targeted_vs_uniform_gain"], summary.get(
        "targeted_vs_uniform_gain_interval")
    gain_text = "-" if gain is None else f"{gain:+.3f}" + (
        f" (95% interval [{gain_ci[0]:+.3f}, {gain_ci[1]:+.3f}], two-proportion test "
        f"p = {summary['targeted_vs_uniform_p_value']:.3g})" if gain_ci else "")
    unmeasured = sorted({n for res in result["policies"].values()
                         for n in res.get("unmeasured", [])})
    doc = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>RoboMD fine-tuning</title>
<style>{_STYLE}</style></head><body><h1>Failure-guided fine-tuning: {esc(result['task'])}</h1>
<p>Campaign <code>{esc(result['campaign'])}</code>; top failure modes
<b>{esc(', '.join(result['top_modes']))}</b>; {result['budget']} demonstrations per strategy.</p>
<ul>{strategies}</ul>
<p>Every policy was rolled out {ev['rollouts']} times in the nominal scene and under each of
{len(ev['perturbations'])} perturbations, with the same seeds ({ev['seed']} + i). Intervals:
{esc(ev['interval'])}. W1 to ideal: 1-Wasserstein distance between the per-perturbation failure
rates (one atom per perturbation) and the all-zero distribution, i.e. their mean, over the
perturbations with at least one completed rollout{
    f"; left out for want of one: {esc(', '.join(unmeasured))}" if unmeasured else ""}.</p>
<table><tr><th>policy</th><th>spec</th><th>success under top modes</th><th>nominal success</th>
<th>success over evaluated perturbations</th><th>W1 to ideal</th></tr>{rows}</table>
<p>Targeted minus uniform success under the top modes:
<b>{gain_text}</b></p>
<img alt="radar" src="data:image/png;base64,{radar_png(result)}" style="max-width:60%">
<img alt="bars" src="data:image/png;base64,{bars_png(result)}" style="max-width:100%">
</body></html>"""
    path = Path(out_dir) / "finetune.html"
    path.write_text(doc)
    return path
