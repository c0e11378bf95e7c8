"""Run a diagnosis campaign: agent + environments + store, resumable after any interruption.

Campaign directory (``config.output`` or ``--out``)::

    rollouts.sqlite      every rollout, committed the moment it finishes (RolloutStore)
    observations/        the images shown to the agent (exact replay on resume)
    checkpoints/         agent checkpoints every ``checkpoint_every`` agent steps
    agent.zip|.json      the final agent (SB3 zip for PPO/A2C, posterior counts for baselines)
    tensorboard/         PPO/A2C training curves
    videos/              rollout videos (sim with ``world.videos: true``)
    diagnosis.json       P_fail, the ranked modes with observed rates, anytime-valid intervals
                         and decisions, entropy, #modes, FSI; for a real robot, which members
                         are physical (an operator makes them) and which digital

With ``stop_when_decided`` the campaign ends early once every member is decided (failure mode or
not, :mod:`robomd_diagnoser.confseq`) from its single-perturbation rollouts.

Resume: rerunning the same campaign replays it from the start. The agent is rebuilt with the same
seed and every agent step whose rollout is stored gets the stored outcome (and cached image)
instead of a new rollout, so the agent retraces its trajectory exactly and continues where the
interrupted run stopped; no finished rollout is lost or run twice. Checkpoints are never loaded
(Stable-Baselines3 zips unpickle on load, and replay does not need them); they are for inspection.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robomd_diagnoser.agent_base import Agent, StepHook
from robomd_diagnoser.agents import make_agent
from robomd_diagnoser.analysis import Diagnosis, GroundTruth, diagnose
from robomd_diagnoser.catalog import Catalog, parse_catalog
from robomd_diagnoser.config import CampaignConfig, ConfigError, check_catalog_task
from robomd_diagnoser.confseq import decide
from robomd_diagnoser.diagnosis_env import KEY_PREFIX, DiagnosisEnv, ObservationCache, rollout_seed
from robomd_diagnoser.digital import needs_operator
from robomd_diagnoser.locks import DirectoryBusy, DirectoryLock
from robomd_diagnoser.plugins import WORLDS, PluginError, load
from robomd_diagnoser.progress import ProgressReporter
from robomd_diagnoser.store import RolloutRecord, RolloutStore
from robomd_diagnoser.world import World

log = logging.getLogger(__name__)

STORE_FILE = "rollouts.sqlite"
RESULT_FILE = "diagnosis.json"
_META = "campaign_fingerprint"


class CampaignError(RuntimeError):
    """A campaign cannot run as asked (e.g. its directory is in use)."""




def campaign_lock(out_dir: str | Path) -> DirectoryLock:
    """Take a campaign directory's run lock (created if missing); hold it until ``close()`` or the
    process ends. Take it before touching anything in the directory.

    :raises CampaignError: if another campaign or sweep holds it.
    """
    try:
        return DirectoryLock(Path(out_dir).resolve(), "another campaign is running in {dir}; wait "
                                                      "for it or use another --out")
    except DirectoryBusy as exc:
        raise CampaignError(str(exc)) from None


def build_world(config: CampaignConfig) -> World:
    """The world a campaign config describes, built by its world type's plug-in.

    :param config: the campaign.
    :raises PluginError: if no installed package provides the campaign's world type.
    """
    return config.world.build()


@dataclass(frozen=True)
class EnvFactory:
    """Picklable recipe for one campaign environment (built inside its worker process).

    :param config: the campaign.
    :param out_dir: the campaign directory.
    :param index: this environment's index.
    :param n_envs: number of parallel environments.
    :param world_factory: builds the world of environment ``index`` (e.g. a
        :class:`~robomd_diagnoser.ros.world.RosWorldFactory`); the config's world when None.
    """

    config: CampaignConfig
    out_dir: Path
    index: int
    n_envs: int
    world_factory: Callable[[int], World] | None = None

    def __call__(self) -> DiagnosisEnv:
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(1)
        store = RolloutStore(self.out_dir / STORE_FILE)
        replay = {r.key: r for r in store.records(KEY_PREFIX)}

        def commit(record: RolloutRecord) -> None:
            try:
                store.add(record)
            except ValueError:
                if not store.has(record.key):
                    raise
                log.warning("rollout %s is already stored (finished by a worker of an "
                            "interrupted run); keeping the stored one", record.key)

        cfg = self.config
        world = self.world_factory(self.index) if self.world_factory else build_world(cfg)
        return DiagnosisEnv(
            world, horizon=cfg.world.horizon, rewards=cfg.rewards,
            max_perturbations=cfg.episode_cap, seed=cfg.seed, max_retries=cfg.max_retries,
            env_index=self.index, n_envs=self.n_envs, on_rollout=commit, replay=replay,
            obs_cache=ObservationCache(self.out_dir / "observations"),
            video_dir=self.out_dir / "videos" if cfg.world.videos else None,
            store_dir=self.out_dir)


def _check_fingerprint(store: RolloutStore, config: CampaignConfig, catalog: Catalog) -> None:
    current = json.loads(json.dumps({**config.fingerprint(),
                                     "catalog": [p.to_dict() for p in catalog]}))
    stored = store.get_meta(_META)
    if stored is None:
        store.set_meta(_META, current)
        return

    def flat(d: dict, prefix: str = "campaign") -> dict[str, Any]:
        out = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}.{k}") if isinstance(v, dict) else {f"{prefix}.{k}": v})
        return out

    now, then = flat(current), flat(stored)
    diffs = [f"{k}: the catalog's contents differ from those the campaign started with"
             if k == "campaign.catalog" else
             f"{k}: started with {then.get(k)!r}, now {now.get(k)!r}"
             for k in sorted(set(now) | set(then)) if now.get(k) != then.get(k)]
    if diffs:
        raise ConfigError(f"{store.path.parent} holds a campaign with other settings "
                          f"({'; '.join(diffs)}); restore them to resume it, or use another --out "
                          "(only budget, output and checkpoint_every may change)")


def check_campaign(config: CampaignConfig) -> Catalog:
    """Everything about a campaign that can be checked without running it (again: the files may
    have changed since it was parsed): its catalog loads and is for the campaign's task, its world
    settings are valid and their world type is installed. :func:`run_campaign` calls it before it
    creates the campaign's store.

    :param config: the campaign.
    :returns: the loaded catalog.
    :raises ConfigError: naming the field.
    """
    catalog = check_catalog_task(config.catalog, config.task)
    config.world.check(lambda f: f"campaign.world.{f}")
    try:
        load(WORLDS, config.world.type, "world type")
    except PluginError as exc:
        raise ConfigError(f"campaign.world.type: {exc}") from None
    return catalog


@dataclass(frozen=True)
class CampaignResult:
    """What :func:`run_campaign` produced.

    :param out_dir: the campaign directory.
    :param p_fail: P_fail per perturbation name, catalog order.
    :param diagnosis: the analysis.
    :param new_rollouts: rollouts run by this invocation (not replayed).
    :param replayed: agent steps served from the store.
    """

    out_dir: Path
    p_fail: dict[str, float]
    diagnosis: Diagnosis
    new_rollouts: int
    replayed: int


def nominal_failure_likelihood(agent: Agent, venv: Any, seed: int, samples: int) -> np.ndarray:
    """P_fail (Eq. 3): the agent's failure likelihood at the nominal scene, averaged over the
    first ``samples`` nominal observations of environment 0.

    :param agent: the trained agent.
    :param venv: the campaign's vectorised environments.
    :param seed: the campaign seed.
    :param samples: nominal scenes to average.
    """
    seeds = [rollout_seed(seed, 0, i, 0, -1) for i in range(samples)]
    nominal = np.stack([venv.env_method("nominal_observation", s, indices=[0])[0]
                        for s in seeds])
    return agent.failure_likelihood(nominal)


def _make_venv(config: CampaignConfig, out_dir: Path,
               world_factory: Callable[[int], World] | None) -> Any:
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    if world_factory is None and config.executor.type == "ray":
        from robomd_diagnoser.ray_pool import RayWorldFactory, cluster_address

        ex = config.executor
        world_factory = RayWorldFactory(functools.partial(build_world, config),
                                        cluster_address(ex.address), ex.cpus_per_world,
                                        ex.gpus_per_world)
    fns = [EnvFactory(config, out_dir, i, config.workers, world_factory)
           for i in range(config.workers)]
    if config.workers == 1:
        return DummyVecEnv(fns)
    return SubprocVecEnv(fns, start_method="spawn")


def run_campaign(config: CampaignConfig, out_dir: Path | None = None, progress: bool = True,
                 ground_truth: GroundTruth | None = None,
                 world_factory: Callable[[int], World] | None = None,
                 on_progress: StepHook | None = None,
                 lock: DirectoryLock | None = None) -> CampaignResult:
    """Run (or resume) a campaign and write its diagnosis.

    :param config: the validated campaign.
    :param out_dir: campaign directory; default ``config.output``.
    :param progress: show a progress bar on stderr.
    :param ground_truth: score the ranking against a sweep in ``diagnosis.json``.
    :param world_factory: picklable; builds environment ``i``'s world (default: from the config).
    :param on_progress: called after every agent step like the agents' ``on_step``; returning
        False stops the campaign there (finished rollouts are kept; rerun to resume).
    :param lock: ``out_dir``'s lock when the caller holds it already; else it is taken here.
    :raises CampaignError: if another process runs a campaign in ``out_dir``.
    :raises ConfigError: if ``out_dir`` holds a campaign started with other settings.
    """
    import torch

    catalog = check_campaign(config)
    out_dir = Path(out_dir or config.output).resolve()
    if lock is not None and not (lock.held and lock.directory == out_dir):
        raise ValueError(f"the lock given is not held on {out_dir}")
    own_lock = campaign_lock(out_dir) if lock is None else None
    store = RolloutStore(out_dir / STORE_FILE)
    try:
        _check_fingerprint(store, config, catalog)
        store.set_meta("campaign", config.to_dict())
        torch.set_num_threads(1)  # small CNN; keeps the cores for rollouts and makes replay exact
        levels = catalog.member_levels() if catalog.space is not None else None
        agent = make_agent(config.agent, len(catalog), config.seed, out_dir / "tensorboard",
                           members=levels, threshold=config.threshold,
                           confidence=config.confidence)
        index = {name: i for i, name in enumerate(catalog.names)}
        singles = np.zeros((len(catalog), 2), dtype=int)  # failures, trials
        (out_dir / "checkpoints").mkdir(exist_ok=True)
        counts = {"new": 0, "replayed": 0, "failures": 0}
        next_ckpt = [config.checkpoint_every]
        venv = _make_venv(config, out_dir, world_factory)
        try:
            with ProgressReporter(config.budget, f"diagnose {config.name}",
                                  enabled=progress) as bar:

                def on_step(done: int, infos: Any) -> bool:
                    for info in infos:
                        counts["replayed" if info["replayed"] else "new"] += 1
                        counts["failures"] += info["success"] is False
                        if info["success"] is not None and len(info["perturbations"]) == 1:
                            singles[index[info["perturbations"][0]]] += (not info["success"], 1)
                    bar.update(min(done, config.budget), failures=counts["failures"],
                               replayed=counts["replayed"])
                    if done >= next_ckpt[0]:
                        agent.save(out_dir / "checkpoints" / f"agent_{done:06d}")
                        next_ckpt[0] = done + config.checkpoint_every
                    if config.stop_when_decided and all_decided(singles, config, agent):
                        log.info("every member is decided after %d rollouts; stopping", done)
                        return False
                    return on_progress(done, infos) if on_progress else True

                agent.run(venv, config.budget, on_step)
            p = nominal_failure_likelihood(agent, venv, config.seed, config.nominal_samples)
        finally:
            venv.close()
        agent.save(out_dir / "agent")
        diagnosis = diagnose(catalog, p, within_budget(store.records(KEY_PREFIX), config.budget,
                                                   config.workers), ground_truth,
                             threshold=config.threshold, confidence=config.confidence,
                             predictions=agent.predictions(), levels=levels)
        p_fail = {name: float(v) for name, v in zip(catalog.names, p, strict=True)}
        physical = ({p.name: needs_operator(p) for p in catalog}
                    if config.world.type == "real" else None)
        write_result(out_dir, config, catalog, p_fail, diagnosis, physical)
        return CampaignResult(out_dir, p_fail, diagnosis, counts["new"], counts["replayed"])
    finally:
        store.close()
        if own_lock is not None:
            own_lock.close()


def within_budget(records: list[RolloutRecord], budget: int, workers: int) -> list[RolloutRecord]:
    """The campaign rollouts of the agent steps a run with ``budget`` makes (the budget rounded
    up to a multiple of ``workers``, as the agents run): a campaign rerun with a smaller budget
    than its store holds reports on those steps only; the later ones stay stored and are replayed
    when the budget grows again.

    :param records: the campaign's stored rollouts.
    :param budget: the campaign's budget in agent steps.
    :param workers: parallel environments.
    """
    steps = -(-budget // workers) * workers
    return [r for r in records if r.agent_step is None or r.agent_step < steps]


def all_decided(counts: np.ndarray, config: CampaignConfig, agent: Agent | None = None) -> bool:
    """Whether every member is decided at the campaign's threshold and confidence, by its own
    rollouts or, for a generalising agent, by the agent's prediction (reported as such).

    :param counts: (failures, trials) per member.
    :param config: the campaign.
    :param agent: the campaign's agent (its :meth:`~Agent.predictions` count as decisions).
    """
    undecided = decide(counts[:, 0], counts[:, 1], config.threshold, config.confidence) == 0
    if undecided.any() and agent is not None:
        undecided[[p.index for p in agent.predictions()]] = False
    return not undecided.any()


def write_result(out_dir: Path, config: CampaignConfig, catalog: Catalog,
                 p_fail: dict[str, float], diagnosis: Diagnosis,
                 physical: dict[str, bool] | None = None) -> Path:
    """Write ``diagnosis.json`` (what ``robomd report`` reads).

    :param out_dir: campaign directory.
    :param config: the campaign.
    :param catalog: the catalog, stored with the result: its single entries and, for a factor
        space, the families and combinations as written (``space``).
    :param p_fail: P_fail per name.
    :param diagnosis: the analysis.
    :param physical: real robots: per name, True when applying it needs the operator (it has a
        physical part), False when it is digital only (key ``physical``; absent when None).
    """
    path = out_dir / RESULT_FILE
    tmp = path.with_suffix(".tmp")
    result = {
        "name": config.name, "task": config.task, "policy": config.policy,
        "agent": config.agent.type, "world": config.world.type, "budget": config.budget,
        "campaign": config.to_dict(), "catalog": [p.to_dict() for p in catalog.perturbations],
        "space": catalog.space_source, "p_fail": p_fail, "diagnosis": diagnosis.to_dict()}
    if physical is not None:
        result["physical"] = physical
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(path)
    return path


def result_catalog(result: dict[str, Any], source: str) -> Catalog:
    """The catalog a ``diagnosis.json`` was written with (:func:`write_result`).

    :param result: the file's content.
    :param source: names the file in errors.
    :raises CatalogError: if the stored catalog is not valid.
    """
    return parse_catalog({"task": result["task"], "perturbations": result["catalog"],
                          **(result.get("space") or {})}, source)

