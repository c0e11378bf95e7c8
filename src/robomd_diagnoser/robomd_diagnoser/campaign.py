"""Run a diagnosis campaign: agent + environments + store, resumable after any interruption.

Campaign directory (``config.output`` or ``--out``)::

    rollouts.sqlite      every rollout, committed the moment it finishes (RolloutStore)
    observations/        the images shown to the agent (exact replay on resume)
    checkpoints/         agent checkpoints every ``checkpoint_every`` agent steps
    agent.zip|.json      the final agent (SB3 zip for PPO/A2C, posterior counts for baselines)
    tensorboard/         PPO/A2C training curves
    videos/              rollout videos (sim with ``world.videos: true``)
    diagnosis.json       P_fail, the ranked modes with observed rates, anytime-valid intervals
                         and decisions, entropy, #modes, FSI

With ``stop_when_decided`` the campaign ends early once every member is decided (failure mode or
not, :mod:`robomd_diagnoser.confseq`) from its single-perturbation rollouts.

Resume: rerunning the same campaign replays it from the start. The agent is rebuilt with the same
seed and every agent step whose rollout is stored gets the stored outcome (and cached image)
instead of a new rollout, so the agent retraces its trajectory exactly and continues where the
interrupted run stopped; no finished rollout is lost or run twice. Checkpoints are never loaded
(Stable-Baselines3 zips unpickle on load, and replay does not need them); they are for inspection.
"""

from __future__ import annotations

import fcntl
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from robomd_diagnoser.agents import StepHook, make_agent
from robomd_diagnoser.analysis import Diagnosis, GroundTruth, diagnose, load_ground_truth
from robomd_diagnoser.catalog import load_catalog
from robomd_diagnoser.config import CampaignConfig, ConfigError
from robomd_diagnoser.confseq import decide
from robomd_diagnoser.env import KEY_PREFIX, DiagnosisEnv, ObservationCache, rollout_seed
from robomd_diagnoser.store import RolloutRecord, RolloutStore
from robomd_diagnoser.world import World

log = logging.getLogger(__name__)

STORE_FILE = "rollouts.sqlite"
RESULT_FILE = "diagnosis.json"
_META = "campaign_fingerprint"


class CampaignError(RuntimeError):
    """A campaign cannot run as asked (e.g. its directory is in use)."""


def build_world(config: CampaignConfig) -> World:
    """The world a campaign config describes (sim: robosuite, imported here; table: synthetic).

    :param config: the campaign.
    """
    if config.world.type == "real":
        raise ConfigError(f"{config.source}: world type 'real' runs on a robot through the ROS 2 "
                          "graph; start it with `robomd bringup-ur5e` or `ros2 launch robomd_ur5e "
                          "diagnose.launch.py`, not in-process")
    catalog = load_catalog(config.catalog)
    if config.world.type == "table":
        from robomd_diagnoser.table_world import TableWorld

        truth = load_ground_truth(config.world.failure_rates)
        return TableWorld(catalog, truth.rates, nominal_rate=truth.nominal or 0.0,
                          image_size=config.world.image_size,
                          rollout_seconds=config.world.rollout_seconds)
    from robomd_diagnoser.executor import WorldSpec

    return WorldSpec(str(config.catalog), config.policy, robot=config.world.robot,
                     camera_size=config.world.camera_size, horizon=config.world.horizon).build()


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


def _check_fingerprint(store: RolloutStore, config: CampaignConfig) -> None:
    current = json.loads(json.dumps(config.fingerprint()))
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
    diffs = [f"{k}: started with {then.get(k)!r}, now {now.get(k)!r}"
             for k in sorted(set(now) | set(then)) if now.get(k) != then.get(k)]
    if diffs:
        raise ConfigError(f"{store.path.parent} holds a campaign with other settings "
                          f"({'; '.join(diffs)}); restore them to resume it, or use another --out "
                          "(only budget, output and checkpoint_every may change)")


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


def _make_venv(config: CampaignConfig, out_dir: Path,
               world_factory: Callable[[int], World] | None) -> Any:
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    fns = [EnvFactory(config, out_dir, i, config.workers, world_factory)
           for i in range(config.workers)]
    if config.workers == 1:
        return DummyVecEnv(fns)
    return SubprocVecEnv(fns, start_method="spawn")


def run_campaign(config: CampaignConfig, out_dir: Path | None = None, progress: bool = True,
                 ground_truth: GroundTruth | None = None,
                 world_factory: Callable[[int], World] | None = None,
                 on_progress: StepHook | None = None) -> CampaignResult:
    """Run (or resume) a campaign and write its diagnosis.

    :param config: the validated campaign.
    :param out_dir: campaign directory; default ``config.output``.
    :param progress: show a progress bar on stderr.
    :param ground_truth: score the ranking against a sweep in ``diagnosis.json``.
    :param world_factory: picklable; builds environment ``i``'s world (default: from the config).
    :param on_progress: called after every agent step like the agents' ``on_step``; returning
        False stops the campaign there (finished rollouts are kept; rerun to resume).
    :raises CampaignError: if another process runs a campaign in ``out_dir``.
    :raises ConfigError: if ``out_dir`` holds a campaign started with other settings.
    """
    import torch
    from tqdm import tqdm

    out_dir = Path(out_dir or config.output).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    lock = (out_dir / ".lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise CampaignError(f"another robomd diagnose is running in {out_dir}; wait for it or "
                            "use another --out") from None
    store = RolloutStore(out_dir / STORE_FILE)
    try:
        _check_fingerprint(store, config)
        store.set_meta("campaign", config.to_dict())
        torch.set_num_threads(1)  # small CNN; keeps the cores for rollouts and makes replay exact
        catalog = load_catalog(config.catalog)
        agent = make_agent(config.agent, len(catalog), config.seed, out_dir / "tensorboard",
                           threshold=config.threshold, confidence=config.confidence)
        index = {name: i for i, name in enumerate(catalog.names)}
        singles = np.zeros((len(catalog), 2), dtype=int)  # failures, trials
        (out_dir / "checkpoints").mkdir(exist_ok=True)
        counts = {"new": 0, "replayed": 0, "failures": 0}
        next_ckpt = [config.checkpoint_every]
        venv = _make_venv(config, out_dir, world_factory)
        try:
            with tqdm(total=config.budget, unit="rollout", desc=f"diagnose {config.name}",
                      file=sys.stderr, disable=not progress, dynamic_ncols=True) as bar:

                def on_step(done: int, infos: Any) -> bool:
                    for info in infos:
                        counts["replayed" if info["replayed"] else "new"] += 1
                        counts["failures"] += info["success"] is False
                        if info["success"] is not None and len(info["perturbations"]) == 1:
                            singles[index[info["perturbations"][0]]] += (not info["success"], 1)
                    bar.update(min(done, config.budget) - bar.n)
                    bar.set_postfix(failures=counts["failures"], replayed=counts["replayed"])
                    if done >= next_ckpt[0]:
                        agent.save(out_dir / "checkpoints" / f"agent_{done:06d}")
                        next_ckpt[0] = done + config.checkpoint_every
                    if config.stop_when_decided and all_decided(singles, config):
                        log.info("every member is decided after %d rollouts; stopping", done)
                        return False
                    return on_progress(done, infos) if on_progress else True

                agent.run(venv, config.budget, on_step)
            seeds = [rollout_seed(config.seed, 0, i, 0, -1) for i in range(config.nominal_samples)]
            nominal = np.stack([venv.env_method("nominal_observation", s, indices=[0])[0]
                                for s in seeds])
            p = agent.failure_likelihood(nominal)
        finally:
            venv.close()
        agent.save(out_dir / "agent")
        diagnosis = diagnose(catalog, p, store.records(KEY_PREFIX), ground_truth,
                             threshold=config.threshold, confidence=config.confidence,
                             predictions=agent.predictions())
        p_fail = {name: float(v) for name, v in zip(catalog.names, p, strict=True)}
        write_result(out_dir, config, catalog.perturbations, p_fail, diagnosis)
        return CampaignResult(out_dir, p_fail, diagnosis, counts["new"], counts["replayed"])
    finally:
        store.close()
        lock.close()


def all_decided(counts: np.ndarray, config: CampaignConfig) -> bool:
    """Whether every member is decided at the campaign's threshold and confidence.

    :param counts: (failures, trials) per member.
    :param config: the campaign.
    """
    return bool((decide(counts[:, 0], counts[:, 1], config.threshold, config.confidence)
                 != 0).all())


def write_result(out_dir: Path, config: CampaignConfig, perturbations: Any,
                 p_fail: dict[str, float], diagnosis: Diagnosis) -> Path:
    """Write ``diagnosis.json`` (what ``robomd report`` reads).

    :param out_dir: campaign directory.
    :param config: the campaign.
    :param perturbations: the catalog's perturbations (stored with the result).
    :param p_fail: P_fail per name.
    :param diagnosis: the analysis.
    """
    path = out_dir / RESULT_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({
        "name": config.name, "task": config.task, "policy": config.policy,
        "agent": config.agent.type, "world": config.world.type, "budget": config.budget,
        "campaign": config.to_dict(), "catalog": [p.to_dict() for p in perturbations],
        "p_fail": p_fail, "diagnosis": diagnosis.to_dict()}, indent=2))
    tmp.replace(path)
    return path
