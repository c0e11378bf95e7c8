"""Failure-guided fine-tuning: demonstrations under diagnosed failure modes -> a new BC version.

Steps (paper Sec. IV-C and appendix IV), each reusing an existing module:

1. :func:`top_modes` picks the top-K modes of a campaign's ``diagnosis.json`` ranking, modes with
   observed failures first.
2. :func:`allocate` spreads a demonstration budget over those modes (``targeted``) or over the whole
   catalog (``uniform``); :func:`collect_strategy_demos` collects them with the scripted expert
   (the ``sim`` demonstration source of :mod:`robomd_diagnoser.plugins`).
3. :func:`build_training_set` links them, plus a replay sample of the original demonstrations, into
   one directory, and :func:`finetune_policy` fine-tunes the parent's weights on it
   (:func:`robomd_diagnoser.learning.train.train_bc` with ``init``), writing ``policy_v2.pt``
   beside the parent with metadata naming the parent, the modes and the data. The parent is never
   written.
4. :func:`evaluate_policy` sweeps each policy on the same scenes and seeds
   (:mod:`robomd_diagnoser.sweep`), and :func:`summarise` compares them: success per perturbation
   with Wilson intervals, nominal success, pooled success under the top modes, and the Wasserstein
   distance of the failure distribution to the ideal all-zero one (:func:`wasserstein_to_ideal`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from robomd_diagnoser.campaign import result_catalog
from robomd_diagnoser.catalog import Catalog
from robomd_diagnoser.config import PoolConfig, WorldSettings
from robomd_diagnoser.learning.train import TrainConfig, train_bc
from robomd_diagnoser.learning.weights import load_bc, save_bc
from robomd_diagnoser.policy import shipped_weights
from robomd_diagnoser.stats import difference_interval, two_proportion_p_value, wilson_interval
from robomd_diagnoser.store import RolloutStore
from robomd_diagnoser.sweep import (
    NOMINAL,
    SweepRow,
    SweepSettings,
    run_sweep,
)

STRATEGIES = ("targeted", "uniform")
POLICY_FILE = "policy_v2.pt"
RESULT_FILE = "finetune.json"
BEFORE = "before"
WEIGHTS_META = "policy_weights_sha256"


class FinetuneError(ValueError):
    """Fine-tuning cannot run as asked; the message names the bad input and the fix."""


# ------------------------------------------------------------------------------ the diagnosis

@dataclass(frozen=True)
class Diagnosed:
    """What fine-tuning needs from a finished campaign.

    :param directory: the campaign directory.
    :param policy: the diagnosed policy's spec (``bc`` or ``bc:<path>``).
    :param parent: the BC weights file of that policy.
    :param catalog: the campaign's catalog (from ``diagnosis.json``).
    :param catalog_path: the catalog YAML the campaign ran.
    :param ranking: the modes as ranked in ``diagnosis.json`` (dicts with name, failures, ...).
    :param world: the campaign's world settings (robot, camera_size, horizon).
    """

    directory: Path
    policy: str
    parent: Path
    catalog: Catalog
    catalog_path: Path
    ranking: list[dict[str, Any]]
    world: dict[str, Any]


def parent_weights(policy: str, task: str) -> Path:
    """The BC weights file of a policy spec.

    :param policy: ``bc`` (the weights shipped for ``task``) or ``bc:<path>``.
    :param task: the diagnosed task.
    :raises FinetuneError: for any other spec.
    """
    if policy == "bc":
        return shipped_weights("bc", task, "`robomd collect-demos` and `robomd train-bc`")
    if policy.startswith("bc:"):
        return Path(policy[3:]).expanduser().resolve()
    raise FinetuneError(f"policy {policy!r}: fine-tuning needs BC weights (policy spec 'bc' or "
                        "'bc:<weights>'); diagnose a BC policy, or fine-tune yours with its own "
                        "training code on the collected demonstrations")


def load_diagnosis(campaign_dir: str | Path) -> Diagnosed:
    """Read a finished campaign's ``diagnosis.json``.

    :param campaign_dir: the campaign directory.
    :raises FinetuneError: if the campaign has not finished, ran no simulated BC policy, or its
        file is malformed.
    """
    directory = Path(campaign_dir)
    path = directory / "diagnosis.json"
    if not path.is_file():
        raise FinetuneError(f"--campaign {directory}: no diagnosis.json; finish the campaign with "
                            "`robomd diagnose --config ... --out DIR` first")
    data = json.loads(path.read_text())
    try:
        campaign, modes = data["campaign"], data["diagnosis"]["modes"]
        catalog = result_catalog(data, str(path))
        world = campaign["world"]
    except (KeyError, TypeError) as exc:
        raise FinetuneError(f"{path}: not a campaign result (missing {exc}); it is written by "
                            "`robomd diagnose`") from None
    if world.get("type") != "sim":
        raise FinetuneError(f"{path}: world type {world.get('type')!r}; fine-tuning collects "
                            "expert demonstrations in simulation, so diagnose a 'sim' campaign")
    return Diagnosed(directory, data["policy"], parent_weights(data["policy"], catalog.task),
                     catalog, Path(campaign["catalog"]), list(modes), world)


def top_modes(ranking: Sequence[dict[str, Any]], k: int) -> list[str]:
    """The top-``k`` failure modes: ranked modes with observed failures first, then the rest.

    Both groups keep the diagnosis order (by P_fail).

    :param ranking: the ``modes`` of ``diagnosis.json``, best first.
    :param k: how many to take.
    :raises FinetuneError: if ``k`` is not in 1..len(ranking).
    """
    if not 1 <= k <= len(ranking):
        raise FinetuneError(f"--top must be in 1..{len(ranking)} (the catalog size), got {k}")
    failed = [m["name"] for m in ranking if m.get("failures", 0) > 0]
    rest = [m["name"] for m in ranking if m.get("failures", 0) <= 0]
    return (failed + rest)[:k]


def allocate(strategy: str, modes: Sequence[str], catalog: Catalog, budget: int,
             seed: int = 0) -> dict[str, int]:
    """Episodes per perturbation for a strategy, under a total budget.

    ``targeted`` splits the budget evenly over ``modes`` (earlier modes get the remainder);
    ``uniform`` splits it evenly over the whole catalog, the remainder (or, with a budget smaller
    than the catalog, the whole budget) going to perturbations drawn at random with ``seed``.

    :param strategy: ``targeted`` or ``uniform``.
    :param modes: the top failure modes.
    :param catalog: the campaign's catalog.
    :param budget: total demonstration episodes.
    :param seed: seed of the uniform draw.
    :raises FinetuneError: on an unknown strategy or a budget below 1.
    """
    if strategy not in STRATEGIES:
        raise FinetuneError(f"--strategy {strategy!r}: use one of {', '.join(STRATEGIES)}")
    if budget < 1:
        raise FinetuneError(f"demonstration budget must be >= 1, got {budget}")
    names = list(modes) if strategy == "targeted" else catalog.names
    base, extra = divmod(budget, len(names))
    order = (list(range(len(names))) if strategy == "targeted"
             else np.random.default_rng(seed).permutation(len(names)).tolist())
    counts = {n: base for n in names}
    for i in order[:extra]:
        counts[names[i]] += 1
    return {n: c for n, c in counts.items() if c > 0}


# ------------------------------------------------------------------------------------ the data

@dataclass(frozen=True)
class DemoPlan:
    """How demonstrations are collected.

    :param catalog: catalog YAML path.
    :param robot: robot name.
    :param camera_size: camera pixels (must match the parent's image size).
    :param horizon: step limit per episode.
    :param noise: expert action noise (as ``robomd collect-demos --noise``).
    :param seed: first seed of every batch.
    :param workers: simulator processes.
    :param executor: where the worlds run (default: this machine).
    """

    catalog: str
    robot: str
    camera_size: int
    horizon: int
    noise: float = 0.2
    seed: int = 5000
    workers: int = 1
    executor: PoolConfig | None = None


def collect_batches(plan: DemoPlan, counts: dict[str, int], root: Path,
                    log: Callable[[str], None] = print) -> list[Path]:
    """Collect ``counts[scene]`` expert episodes per scene (``nominal`` or one perturbation).

    :param plan: collection settings.
    :param counts: episodes wanted per scene.
    :param root: demonstrations root (one sub-directory per scene; resumable).
    :param log: progress lines.
    :returns: the saved episode files.
    :raises FinetuneError: if the expert could not produce enough episodes for a scene.
    """
    from robomd_diagnoser.plugins import DEMONSTRATORS, load

    collect = load(DEMONSTRATORS, "sim", "demonstration source")
    files: list[Path] = []
    for scene, n in counts.items():
        summary = collect(plan.catalog, () if scene == NOMINAL else (scene,), n, root,
                          noise=plan.noise, horizon=plan.horizon, camera_size=plan.camera_size,
                          robot=plan.robot, workers=plan.workers, seed=plan.seed, log=log,
                          executor=plan.executor)
        if summary.saved < n:
            raise FinetuneError(f"the expert saved only {summary.saved}/{n} demonstrations under "
                                f"{scene!r} ({summary.directory}); lower --demos-per-mode or "
                                "drop that mode")
        files += summary.files
    return files


def replay_sample(original: Path, n: int, seed: int = 0) -> list[Path]:
    """``n`` episode files drawn without replacement from the original demonstrations.

    :param original: directory of the parent's training demonstrations (searched recursively).
    :param n: episodes wanted (all of them if fewer exist).
    :param seed: seed of the draw.
    :raises FinetuneError: if the directory holds no demonstrations.
    """
    files = sorted(p for p in Path(original).rglob("*.npz") if not p.name.endswith(".tmp.npz"))
    if not files:
        raise FinetuneError(f"--original-demos {original}: no *.npz demonstrations there; point "
                            "it at the parent's training demos, or leave it out to collect a "
                            "nominal replay set")
    pick = np.random.default_rng(seed).permutation(len(files))[:n]
    return [files[i] for i in sorted(pick)]


def build_training_set(directory: Path, groups: dict[str, list[Path]]) -> Path:
    """Link episode files into one directory tree that :func:`train_bc` reads.

    :param directory: created (replaced links inside are refreshed).
    :param groups: sub-directory name -> episode files.
    :returns: ``directory``.
    """
    for group, files in groups.items():
        sub = directory / group
        sub.mkdir(parents=True, exist_ok=True)
        for f in files:
            link = sub / Path(f).name
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(Path(f).resolve())
    return directory


# ------------------------------------------------------------------------------- fine-tuning

def finetune_config(parent_meta: dict[str, Any], epochs: int, lr: float, seed: int) -> TrainConfig:
    """Training settings for fine-tuning: the parent's augmentation, a smaller learning rate.

    :param parent_meta: the parent's weights metadata.
    :param epochs: passes over the mixed data.
    :param lr: peak learning rate.
    :param seed: training seed.
    """
    t = parent_meta.get("training", {})
    return TrainConfig(epochs=epochs, lr=lr, seed=seed, color_aug=t.get("color_aug") or None,
                       shift=int(t.get("shift", TrainConfig.shift)),
                       batch_size=int(t.get("batch_size", TrainConfig.batch_size)))


def finetune_policy(parent: Path, data_dir: Path, out: Path, cfg: TrainConfig,
                    info: dict[str, Any], log: Callable[[str], None] = print) -> Path:
    """Fine-tune ``parent`` on ``data_dir`` and write ``out`` with ``info`` in its metadata.

    An existing ``out`` written by the same fine-tuning (same ``info``) is kept (resume).

    :param parent: the parent's BC weights (read only).
    :param data_dir: the mixed training set.
    :param out: the new weights file.
    :param cfg: training settings.
    :param info: stored as the weights' ``finetune`` metadata (parent, modes, data...).
    :param log: progress lines.
    :raises FinetuneError: if ``out`` is the parent or holds another fine-tuning.
    """
    if out.resolve() == parent.resolve():
        raise FinetuneError(f"--out would overwrite the parent policy {parent}; pick another "
                            "directory")
    if out.exists():
        _, meta = load_bc(out)
        if meta.get("finetune") == info:
            log(f"finetune: {out} exists with the same settings; keeping it")
            return out
        raise FinetuneError(f"{out} holds a policy fine-tuned with other settings; use another "
                            "--out")
    tmp = out.with_name(out.name + ".train")
    train_bc(data_dir, tmp, cfg, log=log, init=parent)
    model, meta = load_bc(tmp)
    save_bc(out, model, {**meta, "finetune": info})
    tmp.unlink()
    out.with_suffix(".json").write_text(json.dumps({**info, "training": meta["training"]},
                                                   indent=2))
    return out


# -------------------------------------------------------------------------------- evaluation

@dataclass(frozen=True)
class EvalPlan:
    """How every policy is evaluated (the same for all, so results compare).

    :param catalog: the evaluated perturbations (a subset of the campaign's catalog).
    :param catalog_path: the full catalog YAML (the worlds load it).
    :param rollouts: rollouts per scene.
    :param seed: seed of repetition 0.
    :param robot: robot name.
    :param camera_size: camera pixels.
    :param horizon: step limit.
    :param workers: simulator processes.
    :param executor: where the worlds run (default: this machine).
    """

    catalog: Catalog
    catalog_path: str
    rollouts: int
    seed: int
    robot: str
    camera_size: int
    horizon: int
    workers: int = 1
    executor: PoolConfig | None = None


def weights_digest(path: Path) -> str:
    """SHA-256 of a weights file (tells a changed policy behind the same spec)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def evaluate_policy(plan: EvalPlan, policy: str, out: Path, progress: bool = False,
                    world_factory: Callable[[], Any] | None = None,
                    weights: Path | None = None) -> list[SweepRow]:
    """Sweep ``policy`` over the nominal scene and ``plan.catalog`` (resumable, stored in ``out``).

    :param plan: evaluation settings.
    :param policy: the policy spec.
    :param out: the sweep directory (``rollouts.sqlite``, ``failure_rates.*``).
    :param progress: show a progress bar.
    :param world_factory: builds the worlds (default: the simulator with ``policy``).
    :param weights: the policy's weights file; a resumed sweep of other weights is refused.
    :returns: the sweep table, nominal first.
    :raises FinetuneError: if ``out`` holds rollouts of other weights.
    """
    settings = SweepSettings.of(plan.catalog, policy, plan.seed, plan.horizon, plan.camera_size,
                                plan.robot)
    factory = world_factory or WorldSettings(catalog=plan.catalog_path, policy=policy,
                                             robot=plan.robot, camera_size=plan.camera_size,
                                             horizon=plan.horizon)

    def same_weights(store: RolloutStore) -> None:
        if weights is None:
            return
        digest = weights_digest(weights)
        if store.get_meta(WEIGHTS_META) not in (None, digest):
            raise FinetuneError(f"{out} holds rollouts of other weights than {weights} (the "
                                "file changed since); delete that directory or use another "
                                "--out")
        store.set_meta(WEIGHTS_META, digest)

    info = {"task": plan.catalog.task, "policy": policy, "rollouts": plan.rollouts,
            "seed": plan.seed, "horizon": plan.horizon, "camera_size": plan.camera_size,
            "robot": plan.robot}
    return run_sweep(out, settings, plan.catalog, factory, plan.rollouts, workers=plan.workers,
                     progress=progress, info=info, check_store=same_weights).rows


def wasserstein_to_ideal(failure_rates: Sequence[float]) -> float | None:
    """1-Wasserstein distance between the failure rates and the ideal all-zero distribution.

    The per-perturbation failure rates are taken as an empirical distribution of values in [0, 1]
    (one atom per perturbation, equal weights); the ideal policy's is a point mass at 0. The
    distance is then the mean failure rate over the perturbations.

    :param failure_rates: one observed failure rate per measured perturbation.
    :returns: the distance, or None without any rate.
    """
    from scipy.stats import wasserstein_distance

    rates = np.asarray(failure_rates, dtype=float)
    if rates.size == 0:
        return None
    return float(wasserstein_distance(rates, np.zeros_like(rates)))


def _success(successes: int, n: int) -> dict[str, Any]:
    lo, hi = wilson_interval(n - successes, n)
    return {"successes": successes, "n": n, "rate": successes / n if n else None,
            "lo": 1.0 - hi, "hi": 1.0 - lo}


def summarise(rows: list[SweepRow], modes: Sequence[str]) -> dict[str, Any]:
    """Success figures of one evaluated policy.

    :param rows: its sweep table (nominal first).
    :param modes: the top failure modes (pooled into ``success_under_top_modes``).
    :returns: ``nominal``, ``top_modes`` and ``catalog`` (all evaluated perturbations) success with
        Wilson 95% intervals, ``per_perturbation`` rows, the failure-rate distribution and its
        ``wasserstein_to_ideal`` over the perturbations with at least one completed rollout
        (``unmeasured`` lists the others: they have no rate, which is not a rate of 0).
    """
    def pooled(selected: list[SweepRow]) -> dict[str, Any]:
        n = sum(r.rate.n for r in selected)
        return _success(n - sum(r.rate.failures for r in selected), n)

    nominal, perts = rows[0], rows[1:]
    per = [{"name": r.name, **_success(r.rate.n - r.rate.failures, r.rate.n),
            "failure_rate": r.rate.rate} for r in perts]
    measured = {r.name: r.rate.rate for r in perts if r.rate.n > 0}
    top = [r for r in perts if r.name in modes]
    return {"nominal": pooled([nominal]), "top_modes": pooled(top),
            "catalog": pooled(perts), "per_perturbation": per,
            "failure_distribution": measured,
            "unmeasured": [r.name for r in perts if r.rate.n == 0],
            "wasserstein_to_ideal": wasserstein_to_ideal(list(measured.values()))}


def compare(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Headline differences between the evaluated policies.

    ``targeted_vs_uniform_gain`` is the difference of the two strategies' pooled success rates
    under the top modes; ``targeted_vs_uniform_gain_interval`` its 95% Newcombe interval and
    ``targeted_vs_uniform_p_value`` the two-sided two-proportion z-test (the rollouts of the two
    policies are independent samples; both are evaluated on the same seeds).

    :param results: :func:`summarise` output by label (``before``, ``targeted``, ``uniform``).
    """
    def rate(label: str, key: str) -> float | None:
        return results[label][key]["rate"] if label in results else None

    out: dict[str, Any] = {
        "success_under_top_modes_before": rate(BEFORE, "top_modes"),
        "nominal_success_before": rate(BEFORE, "nominal"),
        "wasserstein_before": results[BEFORE]["wasserstein_to_ideal"]}
    for s in STRATEGIES:
        if s in results:
            out[f"success_under_top_modes_{s}"] = rate(s, "top_modes")
            out[f"nominal_success_{s}"] = rate(s, "nominal")
            out[f"wasserstein_{s}"] = results[s]["wasserstein_to_ideal"]
    gain = interval = p_value = None
    if all(s in results and results[s]["top_modes"]["n"] for s in STRATEGIES):
        t, u = results["targeted"]["top_modes"], results["uniform"]["top_modes"]
        gain = t["rate"] - u["rate"]
        interval = list(difference_interval(t["successes"], t["n"], u["successes"], u["n"]))
        p_value = two_proportion_p_value(t["successes"], t["n"], u["successes"], u["n"])
    out["targeted_vs_uniform_gain"] = gain
    out["targeted_vs_uniform_gain_interval"] = interval
    out["targeted_vs_uniform_p_value"] = p_value
    return out


def episode_seeds(files: Sequence[Path]) -> dict[int, Path]:
    """The scene seed of each demonstration episode file (saved with it as ``info_seed``).

    :param files: episode ``.npz`` files.
    """
    seeds = {}
    for f in files:
        with np.load(f) as data:
            if "info_seed" in data:
                seeds[int(data["info_seed"])] = Path(f)
    return seeds


def check_seed_separation(eval_seeds: range, sources: dict[str, Sequence[Path] | range]) -> None:
    """Evaluation scenes must not be scenes a fine-tuned policy was trained on.

    :param eval_seeds: the evaluation's seeds (repetition ``i`` uses ``eval_seed + i``).
    :param sources: training seeds by source name: a range of seeds a collection will draw
        from, or the episode files (their stored seeds are read).
    :raises FinetuneError: naming the source, the shared seeds and the flags that move them.
    """
    for name, source in sources.items():
        seeds = set(source) if isinstance(source, range) else set(episode_seeds(source))
        shared = sorted(seeds & set(eval_seeds))
        if shared:
            raise FinetuneError(
                f"the evaluation seeds {eval_seeds.start}..{eval_seeds.stop - 1} overlap the "
                f"seeds of the {name} ({', '.join(map(str, shared[:5]))}"
                f"{', ...' if len(shared) > 5 else ''}): the policy would be evaluated on scenes "
                "it was trained on; move --eval-seed (or --demo-seed) so the ranges are apart")


def world_plan(diag: Diagnosed, names: Sequence[str], rollouts: int, seed: int,
               workers: int) -> EvalPlan:
    """The evaluation plan over ``names`` in the campaign's world settings.

    :param diag: the diagnosis.
    :param names: perturbations to evaluate.
    :param rollouts: rollouts per scene.
    :param seed: seed of repetition 0.
    :param workers: simulator processes.
    """
    w = diag.world
    return EvalPlan(diag.catalog.subset(list(names)), str(diag.catalog_path), rollouts, seed,
                    w.get("robot", "UR5e"), int(w.get("camera_size", 84)),
                    int(w.get("horizon", 150)), workers)


# ------------------------------------------------------------------------------- the pipeline

@dataclass(frozen=True)
class FinetuneRequest:
    """One ``robomd finetune`` run.

    :param top: number of top failure modes.
    :param demos_per_mode: demonstrations per top mode; the budget of every strategy is
        ``top * demos_per_mode`` episodes.
    :param strategies: strategies to run, from :data:`STRATEGIES`.
    :param original_demos: the parent's training demonstrations (None: collect a nominal set).
    :param replay: original (or nominal) episodes mixed in; None: as many as the budget.
    :param epochs: fine-tuning epochs.
    :param lr: fine-tuning peak learning rate.
    :param eval_rollouts: rollouts per evaluated scene.
    :param eval_all: evaluate the whole catalog (else the nominal scene and the top modes).
    :param eval_seed: seed of evaluation repetition 0; the evaluation's seeds must be apart from
        every demonstration's and replay episode's (checked, see :func:`check_seed_separation`).
    :param demo_seed: first seed of every demonstration batch.
    :param workers: simulator processes.
    :param seed: seed of the replay draw, the uniform allocation and training.
    :param executor: where the worlds run (default: this machine).
    """

    top: int = 3
    demos_per_mode: int = 10
    strategies: tuple[str, ...] = ("targeted",)
    original_demos: Path | None = None
    replay: int | None = None
    epochs: int = 10
    lr: float = 3e-4
    eval_rollouts: int = 10
    eval_all: bool = True
    eval_seed: int = 1000
    demo_seed: int = 5000
    workers: int = 1
    seed: int = 0
    executor: PoolConfig | None = None

    @property
    def budget(self) -> int:
        """Demonstration episodes per strategy."""
        return self.top * self.demos_per_mode


def run_finetune(diag: Diagnosed, out: Path, req: FinetuneRequest,
                 log: Callable[[str], None] = print, progress: bool = False) -> dict[str, Any]:
    """Collect, fine-tune, evaluate before/after and write ``finetune.json`` (resumable).

    :param diag: the diagnosis to act on.
    :param out: output directory; each strategy's policy is ``out/<strategy>/policy_v2.pt``.
    :param req: sizes and options.
    :param log: progress lines.
    :param progress: show rollout progress bars.
    :returns: the result written to ``out/finetune.json``.
    """
    unknown = [s for s in req.strategies if s not in STRATEGIES]
    if unknown or not req.strategies:
        raise FinetuneError(f"--strategy {unknown or '(none)'}: use one or both of "
                            f"{', '.join(STRATEGIES)}")
    if req.demos_per_mode < 1:
        raise FinetuneError(f"--demos-per-mode must be >= 1, got {req.demos_per_mode}")
    modes = top_modes(diag.ranking, req.top)
    parent_model_meta = load_bc(diag.parent)[1]
    w = diag.world
    plan = DemoPlan(str(diag.catalog_path), w.get("robot", "UR5e"), int(w.get("camera_size", 84)),
                    int(w.get("horizon", 150)), seed=req.demo_seed, workers=req.workers,
                    executor=req.executor)
    replay_n = req.budget if req.replay is None else req.replay
    eval_seeds = range(req.eval_seed, req.eval_seed + req.eval_rollouts)
    allocations = {s: allocate(s, modes, diag.catalog, req.budget, req.seed)
                   for s in req.strategies}
    check_seed_separation(eval_seeds, {  # the least each collection draws; files checked below
        **{f"{s} demonstrations": range(req.demo_seed, req.demo_seed + max(c.values(), default=0))
           for s, c in allocations.items()},
        **({"nominal replay episodes": range(replay_n)}
           if replay_n and req.original_demos is None else {})})
    if replay_n == 0:
        replay_files: list[Path] = []
        replay_source = "none (fine-tuned on the new demonstrations only)"
    elif req.original_demos is not None:
        replay_files = replay_sample(req.original_demos, replay_n, req.seed)
        replay_source = f"replay sample of the original demonstrations {req.original_demos}"
    else:
        log(f"finetune: no --original-demos; collecting {replay_n} nominal expert episodes to mix "
            "in as replay data")
        replay_files = collect_batches(replace(plan, seed=0), {NOMINAL: replay_n},
                                       out / "demos" / "replay", log)
        replay_source = "nominal expert episodes collected for this fine-tuning"
    check_seed_separation(eval_seeds, {"replay episodes": replay_files})
    log(f"finetune: top {req.top} modes {modes}; {req.budget} demonstrations per strategy")
    cfg = finetune_config(parent_model_meta, req.epochs, req.lr, req.seed)
    policies = {BEFORE: (diag.policy, diag.parent)}
    strategy_info = {}
    for s in req.strategies:
        counts = allocations[s]
        new = collect_batches(plan, counts, out / "demos" / s, log)
        check_seed_separation(eval_seeds, {f"{s} demonstrations": new})
        data = build_training_set(out / s / "train_demos", {"new": new, "replay": replay_files})
        info = {"parent": str(diag.parent), "parent_sha256": weights_digest(diag.parent),
                "parent_policy": diag.policy,
                "campaign": str(diag.directory.resolve()), "strategy": s, "top_modes": modes,
                "demos": counts, "new_episodes": len(new), "replay_episodes": len(replay_files),
                "replay_source": replay_source, "demo_seed": req.demo_seed,
                "epochs": req.epochs, "lr": req.lr, "seed": req.seed}
        path = finetune_policy(diag.parent, data, out / s / POLICY_FILE, cfg, info, log)
        policies[s] = (f"bc:{path.resolve()}", path)
        strategy_info[s] = info
    names = diag.catalog.names if req.eval_all else modes
    eval_plan = replace(world_plan(diag, names, req.eval_rollouts, req.eval_seed, req.workers),
                        executor=req.executor)
    results = {}
    for label, (spec, weights) in policies.items():
        log(f"finetune: evaluating {label} ({spec}) on {len(names) + 1} scenes x "
            f"{req.eval_rollouts} rollouts")
        rows = evaluate_policy(eval_plan, spec, out / "eval" / label, progress, weights=weights)
        results[label] = {"policy": spec, **summarise(rows, modes)}
    result = {"campaign": str(diag.directory.resolve()), "task": diag.catalog.task,
              "parent": str(diag.parent), "top_modes": modes, "budget": req.budget,
              "evaluation": {"rollouts": req.eval_rollouts, "seed": req.eval_seed,
                             "perturbations": list(names), "interval": "wilson 95%"},
              "strategies": strategy_info, "policies": results, "summary": compare(results)}
    out.mkdir(parents=True, exist_ok=True)
    (out / RESULT_FILE).write_text(json.dumps(result, indent=2))
    return result
