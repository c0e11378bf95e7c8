"""Ground-truth sweeps: every catalog perturbation (and the nominal scene) rolled out N times.

Repetition ``i`` of every perturbation uses seed ``seed + i``, so all perturbations are compared on
the same initial scenes. Each finished rollout is stored at once under ``sweep/<name>/<i>``; a
rerun skips stored keys, which makes an interrupted sweep resumable. The settings that decide a
rollout's outcome are stored with the sweep and a rerun with different ones is refused.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robomd_diagnoser.catalog import Catalog, CatalogError
from robomd_diagnoser.jobs import RolloutJob, WorldFactory
from robomd_diagnoser.locks import DirectoryBusy, DirectoryLock
from robomd_diagnoser.pools import JobPool, make_pool
from robomd_diagnoser.progress import ProgressReporter
from robomd_diagnoser.space_truth import MemberTruth, SpaceTruth
from robomd_diagnoser.stats import FailureRate, failure_rates
from robomd_diagnoser.store import RolloutRecord, RolloutStore
from robomd_diagnoser.world import RolloutStatus

if TYPE_CHECKING:
    from robomd_diagnoser.config import PoolConfig

KEY_PREFIX = "sweep/"
NOMINAL = "nominal"
NOMINAL_TEXT = "Nominal scene (no perturbation)"
CONFIDENCE = 0.95
METHOD = "wilson"
META_KEY = "sweep_settings"


class SweepError(RuntimeError):
    """A sweep cannot run as asked (e.g. its output directory holds a different sweep)."""


@dataclass(frozen=True)
class SweepSettings:
    """Everything that decides a sweep rollout's outcome; a resumed sweep must match it.

    The number of rollouts, the worker count and videos may change between runs.

    :param task: task name.
    :param policy: policy spec.
    :param catalog: the catalog's perturbations as dicts (content, not file path).
    :param seed: seed of repetition 0 (repetition ``i`` uses ``seed + i``).
    :param horizon: step limit per rollout.
    :param camera_size: camera resolution in pixels.
    :param robot: robot name.
    """

    task: str
    policy: str
    catalog: tuple[dict, ...]
    seed: int
    horizon: int
    camera_size: int
    robot: str

    @classmethod
    def of(cls, catalog: Catalog, policy: str, seed: int, horizon: int, camera_size: int,
           robot: str) -> SweepSettings:
        """Settings for sweeping ``catalog``; see the class parameters."""
        if NOMINAL in catalog:
            raise CatalogError(f"{catalog.source}: a perturbation is named {NOMINAL!r}, which a "
                               "sweep reserves for the unperturbed scene; rename it")
        content = tuple(p.to_dict() for p in catalog.perturbations)
        if catalog.space_source is not None:  # the space's definition, not its members
            content += ({"space": catalog.space_source},)
        return cls(catalog.task, policy, content, seed, horizon, camera_size, robot)

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))


def check_settings(store: RolloutStore, settings: SweepSettings) -> None:
    """Record the sweep's settings in a new store, or check them against a resumed one.

    :param store: the sweep's store.
    :param settings: the settings of this run.
    :raises SweepError: naming each setting that differs from the stored sweep.
    """
    current = settings.to_json()
    stored = store.get_meta(META_KEY)
    if stored is None:
        store.set_meta(META_KEY, current)
        return
    diffs = []
    for name, value in current.items():
        if stored.get(name) != value:
            shown = ("(catalog contents differ)" if name == "catalog"
                     else f"stored {stored.get(name)!r}, now {value!r}")
            diffs.append(f"{name}: {shown}")
    if diffs:
        raise SweepError(f"{store.path} holds a sweep with other settings ({'; '.join(diffs)}); "
                         "rerun with the stored settings to resume it, or pick another --out")


def sweep_jobs(catalog: Catalog, rollouts: int, seed: int, max_steps: int,
               video_dir: Path | None = None) -> list[RolloutJob]:
    """The sweep's jobs, repetition by repetition: nominal, then each perturbation alone (in
    :func:`swept_names` order).

    :param catalog: the perturbations to sweep.
    :param rollouts: repetitions per perturbation (and of the nominal scene).
    :param seed: seed of repetition 0; repetition ``i`` uses ``seed + i``.
    :param max_steps: step limit per rollout.
    :param video_dir: keep each rollout's MP4 as ``<video_dir>/<name>/<i>.mp4`` when given.
    """
    if rollouts < 1:
        raise ValueError(f"rollouts must be >= 1, got {rollouts}")
    sets = [(NOMINAL, ())] + [(name, (name,)) for name in swept_names(catalog, seed)]
    return [RolloutJob(key=f"{KEY_PREFIX}{name}/{i}", perturbations=perts, seed=seed + i,
                       max_steps=max_steps,
                       video=str(video_dir / name / f"{i}.mp4") if video_dir else None)
            for i in range(rollouts) for name, perts in sets]


def swept_names(catalog: Catalog, seed: int) -> list[str]:
    """The perturbations a sweep visits, in order: the single entries in catalog order, then
    (for a catalog with a factor space) every member in a seeded order that alternates between
    combination orders (:meth:`PerturbationSpace.sample`), so the first rollouts of a sweep
    (``--limit``) cover singles, pairs and triples alike and a rerun continues the same order.
    """
    names = [p.name for p in catalog.perturbations]
    space = catalog.space
    if space is not None:
        names += [space.member(i).name for i in space.sample(len(space), seed)]
    return names


def run_jobs(store: RolloutStore, pool: JobPool, jobs: Iterable[RolloutJob],
             limit: int | None = None, progress: bool = True) -> int:
    """Run the jobs whose keys are not yet stored, storing each result as it arrives.

    :param store: where results go (and what is already done).
    :param pool: runs the jobs.
    :param jobs: all jobs of the run, finished or not.
    :param limit: run at most this many new jobs (the rest on a later run).
    :param progress: show a progress bar on stderr.
    :returns: the number of rollouts run now.
    """
    jobs = list(jobs)
    done = store.keys()
    missing = [j for j in jobs if j.key not in done]
    todo = missing if limit is None else missing[:limit]
    ran = failures = aborted = 0
    with ProgressReporter(len(jobs), "rollouts", enabled=progress) as bar:
        bar.update(len(jobs) - len(missing))
        for res in pool.map_unordered(todo):
            record = res.to_record(store.directory)
            store.add(record)
            ran += 1
            failures += record.failed
            aborted += record.status != RolloutStatus.COMPLETED.value
            bar.update(len(jobs) - len(missing) + ran, failures=failures, aborted=aborted)
    return ran


@dataclass(frozen=True)
class SweepRow:
    """One line of a sweep's failure-rate table.

    :param name: perturbation name (``nominal`` for the unperturbed scene).
    :param text: its description.
    :param rate: failure counts and interval.
    :param above_nominal: the interval lies entirely above the nominal scene's interval.
    :param levels: for a member of a factor space, its (family, level) pairs.
    """

    name: str
    text: str
    rate: FailureRate
    above_nominal: bool
    levels: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        r = self.rate
        row = {"name": self.name, "text": self.text, "n": r.n, "failures": r.failures,
               "excluded": r.excluded, "failure_rate": r.rate, "lo": r.lo, "hi": r.hi,
               "above_nominal": self.above_nominal}
        if self.levels:
            row["levels"] = [list(lv) for lv in self.levels]
        return row


def table_records(store: RolloutStore, rollouts: int) -> list[RolloutRecord]:
    """The stored sweep rollouts of repetitions ``0 .. rollouts-1`` (keys ``sweep/<name>/<i>``):
    what a table for ``rollouts`` repetitions counts, also when more are stored.

    :param store: the sweep's store.
    :param rollouts: repetitions to include.
    """
    return [r for r in store.records(KEY_PREFIX) if int(r.key.rsplit("/", 1)[1]) < rollouts]


def sweep_table(store: RolloutStore, catalog: Catalog, rollouts: int) -> list[SweepRow]:
    """Failure rates of the nominal scene (first row) and each perturbation, in catalog order.

    Only repetitions ``0 .. rollouts-1`` count, so a table for fewer rollouts than stored is exact.

    :param store: the sweep's store.
    :param catalog: the swept catalog.
    :param rollouts: repetitions to include.
    """
    table = failure_rates(table_records(store, rollouts), CONFIDENCE, METHOD)

    def rate(perts: tuple[str, ...]) -> FailureRate:
        return table.get(perts) or FailureRate(perts, 0, 0, 0, 0.0, 1.0)

    nominal = rate(())
    rows = [SweepRow(NOMINAL, NOMINAL_TEXT, nominal, False)]
    for name in swept_names(catalog, 0):
        r = rate((name,))
        if catalog.space is not None and r.n == 0:
            continue  # a factor space is swept in part: list what was rolled out
        rows.append(SweepRow(name, catalog[name].text, r,
                             r.n > 0 and nominal.n > 0 and r.lo > nominal.hi,
                             catalog[name].levels))
    return rows


def write_reports(rows: list[SweepRow], out_dir: Path, info: dict[str, Any]) -> list[Path]:
    """Write ``failure_rates.csv``, ``failure_rates.json`` and ``failure_rates.png``.

    :param rows: the table from :func:`sweep_table` (nominal first).
    :param out_dir: the sweep's directory.
    :param info: run description stored in the JSON (task, policy, rollouts...).
    :returns: the written paths.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    dicts = [r.to_dict() for r in rows]
    csv_path = out_dir / "failure_rates.csv"
    with csv_path.open("w", newline="") as f:
        # a member's levels are in its name; the CSV keeps one flat row per scene
        writer = csv.DictWriter(f, fieldnames=list(dicts[0]), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(dicts)
    json_path = out_dir / "failure_rates.json"
    json_path.write_text(json.dumps({**info, "confidence": CONFIDENCE, "interval": METHOD,
                                     "nominal": dicts[0], "perturbations": dicts[1:]}, indent=2))
    png_path = out_dir / "failure_rates.png"
    _plot(rows, png_path, info)
    return [csv_path, json_path, png_path]


def write_ground_truth(rows: list[SweepRow], path: Path, space: str, command: str,
                       info: dict[str, Any]) -> Path:
    """Write a complete sweep as a space ground truth (:mod:`robomd_diagnoser.space_truth`):
    every measured perturbation with its levels, failures and trials, and the nominal scene.

    :param rows: the table from :func:`sweep_table` (nominal first).
    :param path: the JSON file to write (atomically).
    :param space: the space's name.
    :param command: the command that rebuilds it.
    :param info: the run's settings, stored beside the members.
    """
    members = tuple(MemberTruth(r.name, r.levels or ((r.name, r.name),), r.rate.failures,
                                r.rate.n) for r in rows[1:] if r.rate.n > 0)
    nominal = rows[0].rate
    data = {**SpaceTruth(space, members, command, str(path)).to_dict(),
            "nominal": {"failures": nominal.failures, "trials": nominal.n},
            "settings": {k: v for k, v in info.items() if k != "complete"}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)
    return path


def _plot(rows: list[SweepRow], path: Path, info: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nominal, perts = rows[0], rows[1:]
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.32 * len(perts)))
    ys = list(range(len(perts)))[::-1]
    rates = [r.rate.rate if r.rate.n else 0.0 for r in perts]
    err = [[rate - r.rate.lo for rate, r in zip(rates, perts, strict=True)],
           [r.rate.hi - rate for rate, r in zip(rates, perts, strict=True)]]
    colors = ["tab:red" if r.above_nominal else "tab:blue" for r in perts]
    ax.barh(ys, rates, xerr=err, color=colors, alpha=0.8, capsize=2, error_kw={"lw": 0.8})
    if nominal.rate.n:
        ax.axvspan(nominal.rate.lo, nominal.rate.hi, color="grey", alpha=0.25,
                   label=f"nominal {nominal.rate.failures}/{nominal.rate.n} (95% interval)")
        ax.axvline(nominal.rate.rate, color="grey", lw=1)
        ax.legend(loc="lower right", fontsize=8)
    ax.set_yticks(ys, [r.name for r in perts], fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("failure rate (Wilson 95% interval); red: interval above nominal")
    ax.set_title(f"{info.get('task')} / {info.get('policy')}: {info.get('rollouts')} rollouts "
                 "per perturbation", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@dataclass(frozen=True)
class SweepOutcome:
    """What :func:`run_sweep` did.

    :param rows: the failure-rate table, nominal first.
    :param jobs: rollouts the whole sweep has.
    :param stored_before: of those, stored before this run.
    :param ran: rollouts run now.
    :param complete: every rollout of the sweep is stored.
    :param reports: the files written.
    """

    rows: list[SweepRow]
    jobs: int
    stored_before: int
    ran: int
    complete: bool
    reports: list[Path]


def run_sweep(out: Path, settings: SweepSettings, catalog: Catalog, world: WorldFactory,
              rollouts: int, *, workers: int | None = 1, limit: int | None = None,
              videos: bool = False, progress: bool = True, info: dict[str, Any] | None = None,
              check_store: Callable[[RolloutStore], None] | None = None,
              on_plan: Callable[[int, int], None] | None = None,
              executor: PoolConfig | None = None) -> SweepOutcome:
    r"""A whole sweep: jobs, store check, a job pool of ``world``\ s, the table and the reports.

    Resumable: rollouts already stored in ``out/rollouts.sqlite`` are not run again, and a store
    of a sweep with other settings is refused.

    :param out: the sweep's directory.
    :param settings: what decides the outcomes (checked against a resumed store).
    :param catalog: the perturbations to sweep.
    :param world: picklable world factory (e.g. a :class:`~robomd_diagnoser.config.WorldSettings`).
    :param rollouts: repetitions per perturbation and of the nominal scene.
    :param workers: parallel worlds (None: 1 locally, the cluster's size on Ray).
    :param limit: run at most this many new rollouts now.
    :param videos: keep each rollout's MP4 under ``out/videos``.
    :param progress: show a progress bar on stderr.
    :param info: run description for the reports (``complete`` is added).
    :param check_store: further checks of the opened store (e.g. the weights it was run with).
    :param on_plan: called with (rollouts in the sweep, already stored) before any runs.
    :param executor: the job pool's backend (default: worker processes on this machine).
    :raises SweepError: if ``out`` holds a sweep with other settings, or another run is writing
        it (the directory's lock is held for the whole sweep).
    :raises RolloutJobError: if a rollout raises in its world (finished ones stay stored).
    """
    jobs = sweep_jobs(catalog, rollouts, settings.seed, settings.horizon,
                      out / "videos" if videos else None)
    try:
        lock = DirectoryLock(out, "another robomd sweep or diagnose is running in {dir}; wait for "
                                  "it or pick another --out")
    except DirectoryBusy as exc:
        raise SweepError(str(exc)) from None
    with lock, RolloutStore(out / "rollouts.sqlite") as store:
        check_settings(store, settings)
        if check_store is not None:
            check_store(store)
        done = store.keys()
        missing = sum(j.key not in done for j in jobs)
        if on_plan is not None:
            on_plan(len(jobs), len(jobs) - missing)
        to_run = missing if limit is None else min(missing, limit)
        ran = 0
        if to_run:
            with make_pool(world, workers, executor, to_run) as pool:
                ran = run_jobs(store, pool, jobs, limit, progress=progress)
        rows = sweep_table(store, catalog, rollouts)
        complete = all(store.has(j.key) for j in jobs)
    reports = write_reports(rows, out, {**(info or {}), "complete": complete})
    return SweepOutcome(rows, len(jobs), len(jobs) - missing, ran, complete, reports)
