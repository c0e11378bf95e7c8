"""Several policies diagnosed over the same perturbations: ``compare.json``, ``compare.html`` and
the RoboFail paper's comparison figures, with what that paper lacks.

Each input is a campaign directory (``diagnosis.json`` + ``rollouts.sqlite``) or a sweep
directory (``failure_rates.json`` + ``rollouts.sqlite``) of one policy; all must be of one task.

- **Observed rates**: each policy's failure rate per perturbation, counted from its stored
  rollouts the way its own results count them (a campaign: single-perturbation rollouts within
  its budget; a sweep: repetitions ``0 .. rollouts-1``), with an interval at the given
  confidence. A campaign's agent chose where to roll out from what it saw, so its intervals are
  anytime-valid confidence sequences (:mod:`robomd_diagnoser.confseq`); a sweep's fixed-n
  rollouts get Wilson intervals (:func:`robomd_diagnoser.stats.wilson_interval`).
- **Compared perturbations**: those measured (at least one judged rollout) under at least two
  policies. A sweep's nominal scene is compared too, as a reference row.
- **Differences**: for every compared perturbation and every pair of policies that both measured
  it, the pooled two-proportion z-test; the p-values of all these tests form one family and are
  adjusted by Holm's method, so the chance of any false "significant" flag is at most
  ``1 - confidence``. The z-test is a fixed-sample test: on a campaign's adaptively sampled
  rollouts its p-values are approximate.
- **Failure distribution** (the paper's radar and stacked bars): a policy's observed rates over the
  perturbations measured under every policy, normalised to sum to 1, and its entropy in nats. The
  paper uses the agent's softmax P_fail; a sweep has no agent, and observed rates mean the same
  thing for every policy. A policy that never failed there has no distribution.
"""

from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from robomd_diagnoser.analysis import CONFIDENCE, entropy
from robomd_diagnoser.campaign import RESULT_FILE, STORE_FILE, within_budget
from robomd_diagnoser.confseq import confidence_sequence
from robomd_diagnoser.diagnosis_env import KEY_PREFIX
from robomd_diagnoser.report import _STYLE, RADAR_MAX, ReportError, _plt, _png, load_result
from robomd_diagnoser.stats import (
    binomial_interval,
    failure_rates,
    holm_adjust,
    two_proportion_p_value,
)
from robomd_diagnoser.store import RolloutRecord, RolloutStore, StoreError
from robomd_diagnoser.sweep import META_KEY, METHOD, NOMINAL, table_records

SWEEP_FILE = "failure_rates.json"
CAMPAIGN = "campaign"
SWEEP = "sweep"
#: The interval each kind of directory gets, as named in the outputs.
INTERVALS = {CAMPAIGN: "anytime-valid", SWEEP: METHOD}
TEST = "two-sided pooled two-proportion z-test"
CORRECTION = "Holm"
#: The figures, by file name.
FIGURES = ("stacked.png", "radar.png", "heatmap.png", "grouped.png")


class CompareError(ValueError):
    """Directories that cannot be compared; the message names the directory and the fix."""


@dataclass(frozen=True)
class PolicyRun:
    """One directory's policy and its observed counts.

    :param directory: the campaign or sweep directory.
    :param kind: :data:`CAMPAIGN` or :data:`SWEEP`.
    :param spec: the policy spec stored with it (None if none was stored).
    :param task: the task.
    :param confidence: the confidence it was run at, if stored.
    :param counts: (failures, judged rollouts, not completed) per perturbation, in the
        directory's order (a sweep's nominal scene first, as :data:`NOMINAL`).
    :param texts: each perturbation's description.
    """

    directory: Path
    kind: str
    spec: str | None
    task: str
    confidence: float | None
    counts: dict[str, tuple[int, int, int]]
    texts: dict[str, str]

    def measured(self) -> list[str]:
        """Perturbations with at least one judged rollout."""
        return [n for n, (_k, trials, _x) in self.counts.items() if trials]


def _counts(records: list[RolloutRecord]) -> dict[str, tuple[int, int, int]]:
    """Counts of the nominal scene and of each single perturbation, in order of appearance."""
    return {(perts[0] if perts else NOMINAL): (fr.failures, fr.n, fr.excluded)
            for perts, fr in failure_rates(records).items() if len(perts) <= 1}


def _open_store(directory: Path) -> RolloutStore:
    try:
        return RolloutStore(directory / STORE_FILE, create=False)
    except StoreError as exc:
        raise CompareError(f"{directory}: {exc}") from None


def _load_campaign(directory: Path) -> PolicyRun:
    try:
        result = load_result(directory)
    except ReportError as exc:
        raise CompareError(str(exc)) from None
    settings = result.get("campaign", {})
    with _open_store(directory) as store:
        records = within_budget(store.records(KEY_PREFIX), result["budget"],
                                settings.get("workers", 1))
        stored = store.get_meta("campaign") or {}
    counts = _counts(records)
    order = list(result["p_fail"])  # catalog order, a space's members included
    return PolicyRun(directory, CAMPAIGN, stored.get("policy") or result["policy"] or None,
                     result["task"], result["diagnosis"].get("confidence"),
                     {n: counts[n] for n in order if n in counts},
                     {m["name"]: m["text"] for m in result["diagnosis"]["modes"]})


def _load_sweep(directory: Path) -> PolicyRun:
    path = directory / SWEEP_FILE
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CompareError(f"{path} is not valid JSON ({exc}); rerun the same `robomd sweep` "
                           "command to rewrite it") from None
    if not (isinstance(info, dict) and isinstance(info.get("task"), str)
            and isinstance(info.get("rollouts"), int)):
        raise CompareError(f"{path}: not a sweep's table (needs 'task' and 'rollouts'); rerun "
                           "the same `robomd sweep` command to rewrite it")
    with _open_store(directory) as store:
        records = table_records(store, info["rollouts"])
        stored = store.get_meta(META_KEY) or {}
    rows = [info.get("nominal") or {}, *info.get("perturbations", [])]
    texts = {r["name"]: r.get("text", "") for r in rows if "name" in r}
    counts = _counts(records)  # in completion order: put them in the table's order
    order = [*[n for n in texts if n in counts], *[n for n in counts if n not in texts]]
    return PolicyRun(directory, SWEEP, stored.get("policy") or info.get("policy") or None,
                     stored.get("task") or info["task"], info.get("confidence"),
                     {n: counts[n] for n in order}, texts)


def load_run(directory: str | Path) -> PolicyRun:
    """Read a campaign or sweep directory (a directory with ``diagnosis.json`` is a campaign).

    :param directory: written by ``robomd diagnose`` or ``robomd sweep``.
    :raises CompareError: if it is neither, or its files are damaged.
    """
    directory = Path(directory)
    if (directory / RESULT_FILE).is_file():
        return _load_campaign(directory)
    if (directory / SWEEP_FILE).is_file():
        return _load_sweep(directory)
    what = "is not a directory" if not directory.is_dir() else (
        f"is neither a campaign (no {RESULT_FILE}) nor a sweep (no {SWEEP_FILE})")
    raise CompareError(f"{directory} {what}; pass directories written by `robomd diagnose` or "
                       "`robomd sweep` (a campaign that has not finished has no "
                       f"{RESULT_FILE}: rerun it to finish)")


def _labels(runs: list[PolicyRun]) -> list[str]:
    """Each run's policy spec (its directory name when none is stored), made unique."""
    base = [r.spec or r.directory.name for r in runs]
    labels = [f"{b} ({r.directory.name})" if base.count(b) > 1 else b
              for b, r in zip(base, runs, strict=True)]
    if len(set(labels)) < len(labels):
        labels = [f"{b} ({r.directory})" for b, r in zip(base, runs, strict=True)]
    return labels


def _confidence(runs: list[PolicyRun], labels: list[str], confidence: float | None) -> float:
    if confidence is not None:
        if not 0.0 < confidence < 1.0:
            raise CompareError(f"--confidence must be in (0, 1), e.g. 0.95; got {confidence}")
        return confidence
    stored = [r.confidence if r.confidence is not None else CONFIDENCE for r in runs]
    if len(set(stored)) > 1:
        each = ", ".join(f"{lab}: {c}" for lab, c in zip(labels, stored, strict=True))
        raise CompareError(f"the directories were run at different confidences ({each}); "
                           "choose one with --confidence")
    return stored[0]


def _rate(run: PolicyRun, name: str, confidence: float) -> dict[str, Any] | None:
    k, n, excluded = run.counts.get(name, (0, 0, 0))
    if not n:
        return None
    if run.kind == CAMPAIGN:
        lo, hi = confidence_sequence(k, n, 1.0 - confidence)
    else:
        lo, hi = binomial_interval(k, n, confidence, METHOD)
    return {"failures": k, "trials": n, "excluded": excluded, "rate": k / n, "lo": lo, "hi": hi}


def _listed(names: list[str], most: int = 5) -> str:
    shown = ", ".join(names[:most]) + (", ..." if len(names) > most else "")
    return f"{len(names)} ({shown})" if names else "0"


def compare(directories: list[str | Path], confidence: float | None = None) -> dict[str, Any]:
    """Compare the policies of several campaign or sweep directories (see the module doc).

    :param directories: two or more, one policy each, all of one task.
    :param confidence: of the intervals and the tests; default: the one the directories were
        run at (they must agree).
    :returns: the content of ``compare.json``.
    :raises CompareError: fewer than two directories, one that is neither a campaign nor a sweep,
        different tasks, different stored confidences without ``confidence``, or no
        perturbation measured under two policies.
    """
    if len(directories) < 2:
        raise CompareError(f"compare needs at least two directories (campaigns or sweeps of "
                           f"different policies), got {len(directories)}"
                           f"{': ' + str(directories[0]) if directories else ''}; add another "
                           "policy's directory")
    runs = [load_run(d) for d in directories]
    labels = _labels(runs)
    tasks = {r.task for r in runs}
    if len(tasks) > 1:
        each = ", ".join(f"{r.directory} is {r.task!r}" for r in runs)
        raise CompareError(f"the directories are of different tasks ({each}); compare policies "
                           "of one task")
    confidence = _confidence(runs, labels, confidence)
    measured = [set(r.measured()) for r in runs]
    order = list(dict.fromkeys(n for r in runs for n in r.counts))
    compared = [n for n in order if sum(n in m for m in measured) >= 2]
    if not [n for n in compared if n != NOMINAL]:
        each = "; ".join(f"{r.directory} measured {_listed(sorted(m - {NOMINAL}))}"
                         for r, m in zip(runs, measured, strict=True))
        raise CompareError(f"no perturbation is measured under two of the policies ({each}); "
                           "compare directories that rolled out the same catalog")
    common = [n for n in compared if n != NOMINAL and all(n in m for m in measured)]
    rows = [{"name": n, "text": next((r.texts[n] for r in runs if r.texts.get(n)), ""),
             "rates": {lab: _rate(r, n, confidence) for lab, r in zip(labels, runs, strict=True)}}
            for n in compared]
    policies = []
    for lab, r in zip(labels, runs, strict=True):
        rates = {n: r.counts[n][0] / r.counts[n][1] for n in common}
        total = sum(rates.values())
        share = {n: v / total for n, v in rates.items()} if total else None
        policies.append({"label": lab, "policy": r.spec, "kind": r.kind,
                         "directory": str(r.directory.resolve()), "interval": INTERVALS[r.kind],
                         "judged": sum(r.counts[n][1] for n in compared if n in r.counts),
                         "failure_share": share,
                         # abs: a one-point distribution's entropy is -0.0
                         "entropy": abs(entropy(list(share.values()))) if share else None})
    return {"task": tasks.pop(), "confidence": confidence, "test": TEST, "correction": CORRECTION,
            "policies": policies, "perturbations": rows, "tests": _tests(rows, labels, confidence),
            "overlap": {"compared": compared, "common": common,
                        "only": {lab: [n for n in r.measured() if n not in compared]
                                 for lab, r in zip(labels, runs, strict=True)}}}


def _tests(rows: list[dict[str, Any]], labels: list[str],
           confidence: float) -> list[dict[str, Any]]:
    """Every pair of policies on every perturbation both measured; Holm over all of them."""
    tests = []
    for row in rows:
        for a, b in combinations(labels, 2):
            ra, rb = row["rates"][a], row["rates"][b]
            if ra and rb:
                tests.append({"perturbation": row["name"], "a": a, "b": b, "rate_a": ra["rate"],
                              "rate_b": rb["rate"], "difference": ra["rate"] - rb["rate"],
                              "p_value": two_proportion_p_value(ra["failures"], ra["trials"],
                                                                rb["failures"], rb["trials"])})
    for t, adjusted in zip(tests, holm_adjust([t["p_value"] for t in tests]), strict=True):
        t["p_adjusted"] = adjusted
        t["significant"] = adjusted < 1.0 - confidence
    return tests


# --- figures -----------------------------------------------------------------------------------


def _color(i: int) -> Any:
    return _plt().get_cmap("tab10")(i % 10)


def _shown(comparison: dict[str, Any], names: list[str]) -> list[str]:
    """At most :data:`RADAR_MAX` of ``names``: those with the highest rate under any policy."""
    if len(names) <= RADAR_MAX:
        return names
    rows = {r["name"]: r for r in comparison["perturbations"]}
    top = set(sorted(names, key=lambda n: -max(
        (v["rate"] for v in rows[n]["rates"].values() if v), default=0.0))[:RADAR_MAX])
    return [n for n in names if n in top]


def _of(names: list[str], everything: list[str]) -> str:
    return "" if len(names) == len(everything) else f" (top {len(names)} of {len(everything)})"


def _entropy_label(p: dict[str, Any], n: int) -> str:
    if p["entropy"] is None:
        return f"{p['label']}\nno failures here: no distribution"
    return f"{p['label']}\nentropy {p['entropy']:.2f} nats (max {math.log(n):.2f})"


def stacked_figure(comparison: dict[str, Any]) -> Any:
    """Each policy's share of its failures per perturbation, stacked (the paper's Fig. 3)."""
    plt = _plt()
    common = comparison["overlap"]["common"]
    names = _shown(comparison, common)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(7.0, 1.5 + 0.45 * len(names)), 5.0))
    bottom = np.zeros(len(names))
    for i, p in enumerate(comparison["policies"]):
        share = np.array([(p["failure_share"] or {}).get(n, 0.0) for n in names])
        ax.bar(x, share, bottom=bottom, color=_color(i), label=_entropy_label(p, len(common)))
        bottom += share
    ax.set_ylim(0, max(bottom.max(initial=0.0), 0.01) * 1.08)
    ax.set_xticks(x, names, rotation=45, ha="right", fontsize=9)
    ax.set_ylabel("share of the policy's failures (each policy sums to 1)")
    ax.set_title(f"{comparison['task']}: each policy's contribution per failure mode"
                 f"{_of(names, common)}", fontsize=11)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def radar_figure(comparison: dict[str, Any]) -> Any:
    """One radar per policy of its failure distribution, entropy in the title (the paper's
    Fig. 4)."""
    plt = _plt()
    common = comparison["overlap"]["common"]
    names = _shown(comparison, common)
    policies = comparison["policies"]
    cols = min(3, len(policies))
    rows = -(-len(policies) // cols)
    fig = plt.figure(figsize=(5.2 * cols, 5.4 * rows))
    angles = np.linspace(0, 2 * np.pi, len(names), endpoint=False)
    closed = np.append(angles, angles[0])
    top = max([max(p["failure_share"].values()) for p in policies if p["failure_share"]],
              default=1.0)
    for i, p in enumerate(policies):
        ax = fig.add_subplot(rows, cols, i + 1, projection="polar")
        v = np.array([(p["failure_share"] or {}).get(n, 0.0) for n in names])
        ax.plot(closed, np.append(v, v[0]), color=_color(i), lw=1.5)
        ax.fill(angles, v, color=_color(i), alpha=0.25)
        ax.set_xticks(angles, names, fontsize=7)
        ax.set_ylim(0, top * 1.05)
        ax.set_rlabel_position(180 / len(names))  # between the first two axes
        ticks = np.linspace(0, top, 4)[1:]
        ax.set_yticks(ticks, [f"{t:.2f}" for t in ticks])
        ax.tick_params(axis="y", labelsize=7)
        ax.set_title(_entropy_label(p, len(common)), fontsize=10, pad=18)
    fig.suptitle(f"{comparison['task']}: failure distribution per policy (observed rates "
                 f"normalised over {len(common)} perturbations){_of(names, common)}", fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.45 / fig.get_figheight()))
    return fig


def heatmap_figure(comparison: dict[str, Any]) -> Any:
    """Observed failure rates, perturbations (rows) x policies (columns); the paper's Fig. 5
    with rates instead of normalised probabilities, so a policy that never fails reads 0."""
    plt = _plt()
    every = [r["name"] for r in comparison["perturbations"]]
    names = _shown(comparison, every)
    rows = {r["name"]: r for r in comparison["perturbations"]}
    policies = comparison["policies"]
    grid = np.array([[(rows[n]["rates"][p["label"]] or {}).get("rate", np.nan) for p in policies]
                     for n in names], dtype=float)
    fig, ax = plt.subplots(figsize=(3.5 + 1.3 * len(policies), 1.5 + 0.3 * len(names)))
    cmap = plt.get_cmap("Reds").with_extremes(bad="#dddddd")
    im = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=0, vmax=1, aspect="auto")
    for (i, j), v in np.ndenumerate(grid):
        ax.text(j, i, "not measured" if np.isnan(v) else f"{v:.2f}", ha="center", va="center",
                fontsize=8, color="white" if v > 0.6 else "black")
    ax.set_xticks(range(len(policies)), [p["label"] for p in policies], rotation=20, ha="right",
                  fontsize=9)
    ax.set_yticks(range(len(names)), names, fontsize=9)
    fig.colorbar(im, ax=ax, label="observed failure rate", fraction=0.06)
    ax.set_title(f"{comparison['task']}: observed failure rates{_of(names, every)}", fontsize=11)
    fig.tight_layout()
    return fig


def grouped_figure(comparison: dict[str, Any]) -> Any:
    """Rates per perturbation, one bar per policy, interval error bars; ``*`` marks a
    significant difference between two policies (the paper's Fig. 6, with intervals)."""
    plt = _plt()
    every = [r["name"] for r in comparison["perturbations"]]
    names = _shown(comparison, every)
    rows = {r["name"]: r for r in comparison["perturbations"]}
    policies = comparison["policies"]
    height = 0.8 / len(policies)
    y = -np.arange(len(names), dtype=float)  # the first perturbation on top
    fig, ax = plt.subplots(figsize=(9.0, 1.6 + 0.14 * len(names) * (len(policies) + 1)))
    for i, p in enumerate(policies):
        rates = [rows[n]["rates"][p["label"]] for n in names]
        ys = [y[j] - (i - (len(policies) - 1) / 2) * height for j, r in enumerate(rates) if r]
        shown = [r for r in rates if r]
        ax.barh(ys, [r["rate"] for r in shown], height, color=_color(i),
                label=f"{p['label']} ({p['interval']} interval)",
                xerr=np.array([[r["rate"] - r["lo"], r["hi"] - r["rate"]] for r in shown]).T
                .reshape(2, -1), capsize=2, error_kw={"lw": 0.8})
    significant = {t["perturbation"] for t in comparison["tests"] if t["significant"]}
    for j, n in enumerate(names):
        if n in significant:
            ax.annotate("*", (1.02, y[j]), va="center", fontsize=14, annotation_clip=False)
    ax.set_yticks(y, names, fontsize=9)
    ax.set_ylim(y[-1] - 0.6, 0.6)
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"observed failure rate, {comparison['confidence']:.0%} interval; * = policies "
                  f"differ ({comparison['correction']}-adjusted p < "
                  f"{1 - comparison['confidence']:.2g})")
    ax.set_title(f"{comparison['task']}: failure rate per perturbation and policy"
                 f"{_of(names, every)}", fontsize=11)
    ax.legend(fontsize=8, loc="lower center", ncols=min(3, len(policies)),
              bbox_to_anchor=(0.5, 1.02 + 0.25 / fig.get_figheight()))
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return fig


# --- outputs -----------------------------------------------------------------------------------


def _cell(r: dict[str, Any] | None) -> str:
    if r is None:
        return "<td>-</td>"
    return (f"<td>{r['failures']}/{r['trials']} = {r['rate']:.2f} "
            f"[{r['lo']:.2f}, {r['hi']:.2f}]</td>")


def _html(comparison: dict[str, Any], images: dict[str, str]) -> str:
    esc = html.escape
    conf = comparison["confidence"]
    policies = comparison["policies"]
    kinds = {p["kind"] for p in policies}
    interval_note = " ".join(
        text for kind, text in ((CAMPAIGN, "Campaign rates (adaptively sampled by the agent) get "
                                 "anytime-valid confidence sequences."),
                                (SWEEP, "Sweep rates (fixed number of rollouts) get Wilson "
                                 "intervals.")) if kind in kinds)
    prows = "".join(
        f"<tr><td>{esc(p['label'])}</td><td><code>{esc(p['policy'] or '-')}</code></td>"
        f"<td>{p['kind']}</td><td>{esc(p['interval'])}</td><td>{p['judged']}</td>"
        f"<td>{'-' if p['entropy'] is None else format(p['entropy'], '.3f')}</td>"
        f"<td><code>{esc(p['directory'])}</code></td></tr>" for p in policies)
    heads = "".join(f"<th>{esc(p['label'])}</th>" for p in policies)
    significant = {}
    for t in comparison["tests"]:
        if t["significant"]:
            significant.setdefault(t["perturbation"], []).append(f"{t['a']} vs {t['b']}")
    rrows = "".join(
        f"<tr><td>{esc(r['name'])}</td><td>{esc(r['text'])}</td>"
        + "".join(_cell(r["rates"][p["label"]]) for p in policies)
        + f"<td>{esc('; '.join(significant.get(r['name'], [])))}</td></tr>"
        for r in comparison["perturbations"])
    trows = "".join(
        f"<tr><td>{esc(t['perturbation'])}</td><td>{esc(t['a'])}</td><td>{esc(t['b'])}</td>"
        f"<td>{t['rate_a']:.2f}</td><td>{t['rate_b']:.2f}</td><td>{t['difference']:+.2f}</td>"
        f"<td>{t['p_value']:.3g}</td><td>{t['p_adjusted']:.3g}</td>"
        f"<td>{'<b>yes</b>' if t['significant'] else ''}</td></tr>"
        for t in sorted(comparison["tests"], key=lambda t: t["p_adjusted"]))
    only = "; ".join(f"{esc(lab)}: {esc(', '.join(names))}"
                     for lab, names in comparison["overlap"]["only"].items() if names)
    ov = comparison["overlap"]
    imgs = "".join(f'<img alt="{name}" src="data:image/png;base64,{b64}" style="max-width:100%">'
                   for name, b64 in images.items())
    return f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>RoboMD policy comparison
</title><style>{_STYLE}</style></head><body><h1>RoboMD policy comparison: {esc(comparison['task'])}
</h1>
<p class="note">Observed failure rates come from each directory's stored rollouts, with
{conf:.0%} intervals. {interval_note} For every perturbation and pair of policies that both
measured it, a {esc(comparison['test'])} compares the rates; its p-values,
{len(comparison['tests'])} tests in all, are adjusted by {esc(comparison['correction'])}'s
method, and a difference is flagged when the adjusted p-value is below {1 - conf:.2g}
(family-wise error rate at most {1 - conf:.2g}). The test assumes a fixed number of
rollouts: on campaign rollouts its p-values are approximate. Each policy's failure
distribution (stacked bars, radar, entropy) is its observed rates over the
{len(ov['common'])} perturbations measured under every policy, normalised to sum to 1
(the paper uses the agent's softmax, which a sweep does not have).</p>
<p>Compared: {len(ov['compared'])} perturbations measured under at least two policies
({len(ov['common'])} under all of them).{' Left out, measured under one policy only: ' + only
if only else ''}</p>
<table><tr><th>policy</th><th>spec</th><th>directory kind</th><th>interval</th>
<th>judged rollouts compared</th><th>entropy (nats)</th><th>directory</th></tr>{prows}</table>
{imgs}
<h2>Observed failure rates</h2>
<table><tr><th>perturbation</th><th>description</th>{heads}<th>significant differences</th></tr>
{rrows}</table>
<h2>Pairwise tests</h2>
<table><tr><th>perturbation</th><th>policy A</th><th>policy B</th><th>rate A</th><th>rate B</th>
<th>A - B</th><th>p</th><th>{esc(comparison['correction'])}-adjusted p</th>
<th>significant</th></tr>{trows}</table>
</body></html>"""


def write_comparison(comparison: dict[str, Any], out_dir: str | Path) -> list[Path]:
    """Write ``compare.json``, the figures (PNG) and ``compare.html`` (figures embedded).

    The stacked bars and the radars need a perturbation measured under every policy; without
    one they are not drawn.

    :param comparison: from :func:`compare`.
    :param out_dir: where to write (created).
    :returns: the written paths.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    makers = dict(zip(FIGURES, (stacked_figure, radar_figure, heatmap_figure, grouped_figure),
                      strict=True))
    if not comparison["overlap"]["common"]:
        del makers["stacked.png"], makers["radar.png"]
    images, paths = {}, []
    for name, make in makers.items():
        images[name] = _png(make(comparison))
        path = out_dir / name
        path.write_bytes(base64.b64decode(images[name]))
        paths.append(path)
    json_path = out_dir / "compare.json"
    json_path.write_text(json.dumps(comparison, indent=2))
    html_path = out_dir / "compare.html"
    html_path.write_text(_html(comparison, images))
    return [json_path, html_path, *paths]
