"""Diagnosis campaign configuration: one YAML file per campaign (``config/campaigns/``).

YAML layout (every key but ``task`` has a default)::

    name: lift_bc                  # default: the file name without .yaml
    task: lift
    catalog: catalogs/lift.yaml    # relative to config/ (or to this file, or absolute)
    world:
      type: sim                    # sim (robosuite) | table (synthetic replay, tests/benchmarks)
                                   # | real (a robot behind the ROS contract: robomd bringup-ur5e)
      robot: UR5e                  # sim only
      camera_size: 84              # sim only: camera and observation size in pixels
      horizon: 150                 # control steps per rollout (both types)
      videos: false                # sim only: keep an MP4 of every rollout
      failure_rates: path.json     # table only: per-perturbation failure rates (sweep output)
      image_size: 36               # table only: observation size
      rollout_seconds: 0.0         # table only: simulated time per rollout
    policy: bc                     # the policy under test (sim: a policy spec)
    agent:
      type: ppo                    # ppo | a2c | uniform | random | thompson | good_arm | factor
      learning_rate: 3.0e-4        # further keys per type, see AGENT_PARAMS
    budget: 126                    # rollouts
    max_perturbations: 3           # episode cap (RL agents; baselines use 1)
    rewards: {failure: 1.0, success_per_step: 0.001}
    seed: 0
    workers: 2                     # parallel worlds (each in its own process when > 1)
    checkpoint_every: 32           # rollouts between agent checkpoints
    max_retries: 2                 # re-runs of an aborted rollout before the step is skipped
    nominal_samples: 4             # nominal scenes averaged for P_fail
    executor:                      # where the worlds run (not part of the resume fingerprint)
      type: local                  # local (processes on this machine) | ray (a Ray cluster)
      address: auto                # ray only: auto, host:port or ray://host:port; none: start
                                   # a local Ray on this machine
      cpus_per_world: 1            # ray only: CPUs Ray reserves per world
      gpus_per_world: 0            # ray only: GPUs Ray reserves per world (a policy on the GPU)
    output: runs/lift_bc           # campaign directory (relative to the working directory)
    threshold: 0.5                 # a failure mode fails at least this often
    confidence: 0.95               # of the anytime-valid intervals; decisions at FDR 1 - this
    stop_when_decided: false       # end the campaign once every member is decided
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from robomd_diagnoser.paths import find_config

if TYPE_CHECKING:
    from robomd_diagnoser.catalog import Catalog
    from robomd_diagnoser.world import World

AGENT_TYPES = ("ppo", "a2c", "uniform", "random", "thompson", "good_arm", "factor")
WORLD_TYPES = ("sim", "table", "real")
#: Robots the simulated worlds support.
ROBOTS = ("UR5e", "Panda")
#: Image sizes a world may render, pixels.
MIN_IMAGE, MAX_IMAGE = 16, 512
#: The campaign agent's CNN needs images of at least this many pixels.
AGENT_MIN_IMAGE = 36
MAX_HORIZON = 100_000
#: Parallel worlds a campaign may ask for (each is a process holding a simulator).
MAX_WORKERS = 64
#: Upper bounds of the other counts (far above any useful value; they catch typos like 1e9).
MAX_COUNT = 1_000_000
MAX_SEED = 2**31 - 1
#: Upper bound of the reward constants (Algorithm 1 uses 1 and 1e-3).
MAX_REWARD = 1e6
EXECUTOR_TYPES = ("local", "ray")
RL_AGENTS = ("ppo", "a2c")

#: Hyper-parameters each agent type accepts, with their defaults. PPO's are the paper's
#: (lr 3e-4, gamma 0.99, clip 0.2, 10 epochs, batch 64) with a short rollout buffer (n_steps per
#: worker) so that a campaign of ~100 rollouts still makes several updates.
AGENT_PARAMS: dict[str, dict[str, Any]] = {
    "ppo": {"learning_rate": 3e-4, "gamma": 0.99, "clip_range": 0.2, "n_epochs": 10,
            "batch_size": 64, "n_steps": 32, "gae_lambda": 0.95, "ent_coef": 0.0,
            "mask_decided": False},
    "a2c": {"learning_rate": 7e-4, "gamma": 0.99, "n_steps": 5, "gae_lambda": 1.0,
            "ent_coef": 0.0},
    "uniform": {"shuffle": False},
    "random": {},
    "thompson": {"prior_alpha": 1.0, "prior_beta": 1.0},
    "good_arm": {},
    "factor": {"refit_every": 16, "explore": 0.1, "prior_scale": 3.0, "interaction_scale": 1.0},
}
_WORLD_KEYS = {"sim": {"type", "robot", "camera_size", "horizon", "videos"},
               "table": {"type", "horizon", "failure_rates", "image_size", "rollout_seconds"},
               "real": {"type", "horizon"}}
_EXECUTOR_KEYS = {"type", "address", "cpus_per_world", "gpus_per_world"}
_TOP_KEYS = {"name", "task", "catalog", "world", "policy", "agent", "budget", "max_perturbations",
             "rewards", "seed", "workers", "checkpoint_every", "max_retries", "nominal_samples",
             "output", "executor", "threshold", "confidence", "stop_when_decided"}
#: Defaults of the decision settings (see :mod:`robomd_diagnoser.confseq`).
DECISION_DEFAULTS: dict[str, Any] = {"threshold": 0.5, "confidence": 0.95,
                                     "stop_when_decided": False}


class ConfigError(ValueError):
    """A campaign file is malformed; the message names the field (``campaign.agent.type``...)."""


@dataclass(frozen=True)
class WorldSettings:
    """The one validated description of a world: what a campaign rolls out in, what a sim bridge
    node serves and what each worker of a job pool builds (it is picklable and callable).

    :param type: ``sim`` (robosuite, the product), ``table`` (synthetic Bernoulli replay of
        measured failure rates; for tests and benchmarks only) or ``real`` (a robot behind the
        ROS 2 contract; runs only through the ROS graph). The implementation is the plug-in
        registered under this name in the ``robomd.worlds`` entry-point group.
    :param catalog: path of the perturbation catalog YAML (its ``task`` picks the scene), or the
        catalog itself (a sweep's stored catalog).
    :param policy: the policy spec under test (``bc``, ``expert``, ``torchscript:<path>``...);
        empty for a world that only shows scenes (nothing is rolled out).
    :param robot: sim robot, one of :data:`ROBOTS`.
    :param camera: sim scene camera name.
    :param camera_size: sim camera size (the policy's and the agent's image), pixels.
    :param horizon: control steps per rollout.
    :param videos: sim only: keep an MP4 of every rollout (linked from the report).
    :param failure_rates: table only: path of a ``failure_rates.json``.
    :param image_size: table only: observation size in pixels.
    :param rollout_seconds: table only: wall-clock seconds each rollout takes.
    """

    type: str = "sim"
    catalog: str | Catalog = ""
    policy: str = "bc"
    robot: str = "UR5e"
    camera: str = "agentview"
    camera_size: int = 84
    horizon: int = 150
    videos: bool = False
    failure_rates: str | None = None
    image_size: int = 36
    rollout_seconds: float = 0.0

    def check(self, field_name: Callable[[str], str] = lambda f: f"world.{f}") -> WorldSettings:
        """Validate the values (the same rules wherever the settings come from); return self.

        :param field_name: how a field is named in messages (``campaign.world.camera_size``,
            ``parameter camera_size``...).
        :raises ConfigError: naming the field and what is accepted.
        """
        if self.type not in WORLD_TYPES:
            raise ConfigError(f"{field_name('type')}: unknown {self.type!r}; use one of "
                              f"{', '.join(WORLD_TYPES)}")
        for key, lo, hi in (("camera_size", MIN_IMAGE, MAX_IMAGE),
                            ("image_size", MIN_IMAGE, MAX_IMAGE), ("horizon", 1, MAX_HORIZON)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                raise ConfigError(f"{field_name(key)}: {value!r} is out of range; use an integer "
                                  f"in {lo}..{hi}")
        if self.robot not in ROBOTS:
            raise ConfigError(f"{field_name('robot')}: {self.robot!r} is not a supported robot; "
                              f"use one of {', '.join(ROBOTS)}")
        if not isinstance(self.policy, str):
            raise ConfigError(f"{field_name('policy')}: a policy spec such as 'bc' or 'expert', "
                              f"got {self.policy!r}")
        if not math.isfinite(self.rollout_seconds) or not 0 <= self.rollout_seconds <= 3600:
            raise ConfigError(f"{field_name('rollout_seconds')}: use a number in 0..3600, got "
                              f"{self.rollout_seconds!r}")
        if self.type == "table" and not self.failure_rates:
            raise ConfigError(f"{field_name('failure_rates')}: a table world needs the path of a "
                              "failure_rates.json (the output of `robomd sweep`)")
        return self

    def load_catalog(self) -> Catalog:
        """The catalog: :attr:`catalog` itself, or the file it names, loaded."""
        from robomd_diagnoser.catalog import Catalog, load_catalog

        return self.catalog if isinstance(self.catalog, Catalog) else load_catalog(self.catalog)

    def build(self) -> World:
        """Build the world with the plug-in registered for :attr:`type` (imported here).

        :raises PluginError: if no installed package provides that world type.
        """
        from robomd_diagnoser.plugins import WORLDS, load

        return load(WORLDS, self.type, "world type")(self)

    def __call__(self) -> World:
        return self.build()


@dataclass(frozen=True)
class PoolConfig:
    """The job pool that runs rollouts (a campaign's ``executor:`` key, ``--executor``): worker
    processes on this machine, or actors on a Ray cluster.

    :param type: ``local`` or ``ray``.
    :param address: ray: ``auto``, ``host:port`` or ``ray://host:port`` to join a running
        cluster; None starts a local Ray on this machine.
    :param cpus_per_world: ray: CPUs reserved for each world.
    :param gpus_per_world: ray: GPUs reserved for each world.
    """

    type: str = "local"
    address: str | None = None
    cpus_per_world: float = 1.0
    gpus_per_world: float = 0.0


@dataclass(frozen=True)
class RewardConfig:
    """Reward constants of Algorithm 1: ``failure`` on a failed rollout, ``-success_per_step * t``
    on a successful one that took ``t`` control steps.

    :param failure: C_failure.
    :param success_per_step: C_success.
    """

    failure: float = 1.0
    success_per_step: float = 1e-3


@dataclass(frozen=True)
class AgentConfig:
    """The diagnosing agent.

    :param type: one of :data:`AGENT_TYPES`.
    :param params: hyper-parameters (defaults from :data:`AGENT_PARAMS` filled in).
    """

    type: str = "ppo"
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CampaignConfig:
    """A validated campaign; see the module docstring for the YAML keys."""

    name: str
    task: str
    world: WorldSettings
    agent: AgentConfig
    budget: int
    max_perturbations: int
    rewards: RewardConfig
    seed: int
    workers: int
    checkpoint_every: int
    max_retries: int
    nominal_samples: int
    output: Path
    executor: PoolConfig = PoolConfig()
    source: str = "<memory>"
    threshold: float = 0.5
    confidence: float = 0.95
    stop_when_decided: bool = False

    @property
    def catalog(self) -> Path:
        """The perturbation catalog file (``world.catalog``)."""
        return Path(self.world.catalog)

    @property
    def policy(self) -> str:
        """The policy spec under test (``world.policy``)."""
        return self.world.policy

    @property
    def episode_cap(self) -> int:
        """Perturbations per episode: ``max_perturbations`` for RL agents, 1 for the baselines."""
        return self.max_perturbations if self.agent.type in RL_AGENTS else 1

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (paths as strings)."""
        data = asdict(self)
        world = data.pop("world")
        data["catalog"] = world.pop("catalog")
        data["policy"] = world.pop("policy")
        world.pop("camera")  # not a campaign setting: sim campaigns use the default camera
        data["world"] = world
        data["output"] = str(self.output)
        data["agent"] = {"type": self.agent.type, **self.agent.params}
        data.pop("source")
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<stored>") -> CampaignConfig:
        """Read back what :meth:`to_dict` wrote (it lists every world field, also those of
        other world types, which :func:`parse_campaign` refuses in a user's file)."""
        world = dict(data.get("world") or {})
        keys = _WORLD_KEYS.get(world.get("type", "sim"), set())
        executor = dict(data.get("executor") or {})
        if executor.get("type", "local") == "local":
            executor = {"type": "local"}
        return parse_campaign({**data, "world": {k: v for k, v in world.items() if k in keys},
                               "executor": executor}, source)

    def fingerprint(self) -> dict[str, Any]:
        """The settings that determine the agent's trajectory; a resumed campaign must match them.

        The budget, output and checkpoint interval are not part of it: a campaign may be resumed
        with a larger budget.
        """
        data = self.to_dict()
        for key in ("budget", "output", "checkpoint_every", "name", "catalog", "executor"):
            data.pop(key)
        for key in ("rollout_seconds", "videos"):
            data["world"].pop(key)
        for key, default in DECISION_DEFAULTS.items():  # campaigns from before these settings
            if data[key] == default:
                data.pop(key)
        if data["agent"].get("mask_decided") is False:
            data["agent"].pop("mask_decided")
        return data


def _number(value: Any, where: str, kind: type, minimum: float | None = None,
            strict: bool = False, maximum: float | None = None) -> Any:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and not math.isfinite(value):
        raise ConfigError(f"{where}: must be a finite number, got {value!r}")
    if kind is int:
        ok = ok and float(value).is_integer()
    if not ok:
        raise ConfigError(f"{where}: expected {'an integer' if kind is int else 'a number'}, "
                          f"got {value!r}")
    value = kind(value)
    if minimum is not None and (value <= minimum if strict else value < minimum):
        raise ConfigError(f"{where}: must be {'>' if strict else '>='} {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{where}: must be <= {maximum}, got {value!r}")
    return value


def _mapping(data: Any, where: str, allowed: set[str]) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key; use one of "
                          f"{', '.join(sorted(allowed))}")
    return data


def _resolve(path: str, base: Path | None, where: str) -> Path:
    """Resolve ``path``: absolute, relative to the campaign file, or under ``config/``."""
    p = Path(path).expanduser()
    candidates = [p] if p.is_absolute() else ([base / p] if base else []) + [Path.cwd() / p]
    for c in candidates:
        if c.is_file():
            return c.resolve()
    if not p.is_absolute():
        try:
            return Path(find_config(path)).resolve()
        except (FileNotFoundError, ValueError):
            pass
    raise ConfigError(f"{where}: file {path!r} not found (tried {', '.join(map(str, candidates))} "
                      "and config/); give a path relative to config/ or an absolute path")


def _world(data: Any, base: Path | None, catalog: Path, policy: Any) -> WorldSettings:
    where = "campaign.world"
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    wtype = (data or {}).get("type", "sim")
    if wtype not in WORLD_TYPES:
        raise ConfigError(f"{where}.type: unknown {wtype!r}; use one of {', '.join(WORLD_TYPES)}")
    data = _mapping(data, where, _WORLD_KEYS[wtype])
    if policy is None:
        policy = "bc" if wtype == "sim" else "table"
    if not isinstance(policy, str) or not policy.strip():
        raise ConfigError(f"campaign.policy: a policy spec such as 'bc' or 'expert', got "
                          f"{policy!r}")
    kw: dict[str, Any] = {"type": wtype, "catalog": str(catalog), "policy": policy}
    for key in ("camera_size", "horizon", "image_size"):
        if key in data:  # the ranges are WorldSettings.check's
            kw[key] = _number(data[key], f"{where}.{key}", int, 1)
    if "robot" in data:
        if not isinstance(data["robot"], str) or not data["robot"]:
            raise ConfigError(f"{where}.robot: a robosuite robot name, e.g. UR5e")
        kw["robot"] = data["robot"]
    if "videos" in data:
        if not isinstance(data["videos"], bool):
            raise ConfigError(f"{where}.videos: true or false, got {data['videos']!r}")
        kw["videos"] = data["videos"]
    if "rollout_seconds" in data:
        kw["rollout_seconds"] = _number(data["rollout_seconds"], f"{where}.rollout_seconds",
                                        float, 0)
    if wtype == "table" and "failure_rates" in data:
        kw["failure_rates"] = str(_resolve(str(data["failure_rates"]), base,
                                           f"{where}.failure_rates"))
    world = WorldSettings(**kw).check(lambda f: "campaign.policy" if f == "policy"
                                      else f"{where}.{f}")
    key = "image_size" if wtype == "table" else "camera_size"
    if getattr(world, key) < AGENT_MIN_IMAGE:
        raise ConfigError(f"{where}.{key}: the agent's CNN needs at least {AGENT_MIN_IMAGE} "
                          f"pixels, got {getattr(world, key)}")
    return world


def parse_executor(data: Any, where: str = "campaign.executor") -> PoolConfig:
    """Validate an executor mapping (``{type: ray, address: auto, cpus_per_world: 1}``).

    :param data: the parsed YAML (None: local).
    :param where: the field's name in messages.
    :raises ConfigError: naming the bad field and the fix.
    """
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping such as {{type: ray, address: auto}}, "
                          f"got {data!r}")
    etype = (data or {}).get("type", "local")
    if etype not in EXECUTOR_TYPES:
        raise ConfigError(f"{where}.type: unknown {etype!r}; use one of "
                          f"{', '.join(EXECUTOR_TYPES)}")
    data = _mapping(data, where, _EXECUTOR_KEYS)
    if etype == "local" and (extra := sorted(set(data) - {"type"})):
        raise ConfigError(f"{where}.{extra[0]}: only for executor type ray; drop it or set "
                          "type: ray")
    address = data.get("address")
    if address is not None and (not isinstance(address, str) or not address):
        raise ConfigError(f"{where}.address: 'auto', 'host:port' or 'ray://host:port' (or leave "
                          f"it out to start a local Ray), got {address!r}")
    return PoolConfig(
        etype, address,
        _number(data.get("cpus_per_world", 1.0), f"{where}.cpus_per_world", float, 0, True),
        _number(data.get("gpus_per_world", 0.0), f"{where}.gpus_per_world", float, 0))


def _agent(data: Any) -> AgentConfig:
    where = "campaign.agent"
    if isinstance(data, str):
        data = {"type": data}
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping with a type, got {data!r}")
    atype = data.get("type", "ppo")
    if atype not in AGENT_TYPES:
        raise ConfigError(f"{where}.type: unknown {atype!r}; use one of {', '.join(AGENT_TYPES)}")
    defaults = AGENT_PARAMS[atype]
    params = dict(defaults)
    for key, value in data.items():
        if key == "type":
            continue
        if key not in defaults:
            allowed = ", ".join(sorted(defaults)) or "no hyper-parameters"
            raise ConfigError(f"{where}.{key}: unknown for agent {atype!r}; it takes {allowed}")
        kind = type(defaults[key])
        if kind is bool:
            if not isinstance(value, bool):
                raise ConfigError(f"{where}.{key}: true or false, got {value!r}")
            params[key] = value
            continue
        strict = key in ("learning_rate", "clip_range", "prior_alpha", "prior_beta",
                         "prior_scale", "interaction_scale")
        params[key] = _number(value, f"{where}.{key}", kind, 0 if kind is float else 1, strict,
                              1.0 if key == "learning_rate" else
                              MAX_REWARD if kind is float else MAX_COUNT)
    for key in ("gamma", "gae_lambda", "clip_range", "explore"):
        if key in params and params[key] > 1:
            raise ConfigError(f"{where}.{key}: must be <= 1, got {params[key]}")
    return AgentConfig(atype, params)


def check_catalog_task(path: Path, task: str) -> Catalog:
    """The catalog at ``path``, loaded; it must be for ``task`` (else a campaign would run the
    catalog's task and label it with its own).

    :raises ConfigError: naming ``campaign.catalog`` or ``campaign.task``.
    """
    from robomd_diagnoser.catalog import CatalogError, load_catalog

    try:
        catalog = load_catalog(path)
    except CatalogError as exc:
        raise ConfigError(f"campaign.catalog: {exc}") from None
    if catalog.task != task:
        raise ConfigError(f"campaign.task: the campaign is for task {task!r} but its catalog "
                          f"{path} is for task {catalog.task!r}; use the catalog of task {task!r} "
                          "or set task to the catalog's")
    return catalog
def _decision(data: dict[str, Any]) -> dict[str, Any]:
    """``threshold``, ``confidence`` and ``stop_when_decided``, validated."""
    out = {}
    for key in ("threshold", "confidence"):
        value = _number(data.get(key, DECISION_DEFAULTS[key]), f"campaign.{key}", float, 0, True)
        if value >= 1:
            raise ConfigError(f"campaign.{key}: must be between 0 and 1 (exclusive), e.g. "
                              f"{DECISION_DEFAULTS[key]}; got {value}")
        out[key] = value
    stop = data.get("stop_when_decided", False)
    if not isinstance(stop, bool):
        raise ConfigError(f"campaign.stop_when_decided: true or false, got {stop!r}")
    out["stop_when_decided"] = stop
    return out


def parse_campaign(data: Any, source: str = "<memory>", base: Path | None = None) -> CampaignConfig:
    """Validate a parsed campaign document.

    :param data: the parsed YAML.
    :param source: where it came from (for messages and the default name).
    :param base: directory relative paths are tried against first (the file's directory).
    :raises ConfigError: naming the bad field and the fix.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a campaign is a mapping with at least 'task'")
    data = _mapping(data, "campaign", _TOP_KEYS)
    task = data.get("task")
    if not isinstance(task, str) or not task:
        raise ConfigError("campaign.task: a non-empty task name is required, e.g. task: lift")
    name = data.get("name", Path(source).stem if source != "<memory>" else task)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"campaign.name: a non-empty string, got {name!r}")
    catalog = _resolve(str(data.get("catalog", f"catalogs/{task}.yaml")), base, "campaign.catalog")
    check_catalog_task(catalog, task)
    world = _world(data.get("world"), base, catalog, data.get("policy"))
    rewards_raw = _mapping(data.get("rewards"), "campaign.rewards", {"failure", "success_per_step"})
    rewards = RewardConfig(
        failure=_number(rewards_raw.get("failure", 1.0), "campaign.rewards.failure", float, 0,
                        True, MAX_REWARD),
        success_per_step=_number(rewards_raw.get("success_per_step", 1e-3),
                                 "campaign.rewards.success_per_step", float, 0, False,
                                 MAX_REWARD))
    ints = {key: _number(data.get(key, default), f"campaign.{key}", int, minimum, False, maximum)
            for key, default, minimum, maximum in (
                ("budget", 126, 1, MAX_COUNT), ("max_perturbations", 3, 1, 100),
                ("seed", 0, 0, MAX_SEED), ("workers", 1, 1, MAX_WORKERS),
                ("checkpoint_every", 32, 1, MAX_COUNT), ("max_retries", 2, 0, 100),
                ("nominal_samples", 4, 1, 10_000))}
    executor = parse_executor(data.get("executor"))
    if executor.type == "ray" and world.type == "real":
        raise ConfigError("campaign.executor.type: a real world runs on its robot through the ROS "
                          "graph, not on Ray; use executor type local (or drop the executor)")
    decision = _decision(data)
    output = data.get("output", f"runs/{name}")
    if not isinstance(output, str) or not output:
        raise ConfigError(f"campaign.output: a directory path, got {output!r}")
    return CampaignConfig(name=name, task=task, world=world,
                          agent=_agent(data.get("agent")), rewards=rewards,
                          output=Path(output).expanduser(), executor=executor, source=source,
                          **ints, **decision)


def load_campaign(path: str | Path) -> CampaignConfig:
    """Load and validate a campaign YAML file.

    :param path: the file.
    :raises ConfigError: if the file is missing, not YAML, or invalid.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"campaign file {path} does not exist; campaigns live in "
                          "config/campaigns/")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text (UTF-8) file ({exc.reason} at byte {exc.start}); "
                          "a campaign is a YAML file") from None
    return parse_campaign(data, str(path), path.parent.resolve())
