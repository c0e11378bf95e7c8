"""The real-robot campaign's node set: the one place both ``diagnose.launch.py`` and
``robomd bringup-ur5e`` take it from.

Nodes (namespace ``/robomd``): ``camera`` (not with fake hardware: the executor then publishes the
simulated camera), ``policy_executor``, ``success_detector``, ``operator_prompt`` and the
``diagnoser`` (robomd_diagnoser's, world ``/robomd``). Parameters come from the ROS parameter
files in ``config/ur5e/`` (``fake_hardware.yaml`` overrides ``executor.yaml`` on fake hardware)
plus the launch arguments.

ROS domain: a real robot's graph uses the lab's default domain (``ROS_DOMAIN_ID`` as set in the
shell, 0 when unset) so tools on other lab machines can see it; a dry run on mock hardware is a
localhost graph like a simulated campaign (loopback-only DDS sockets, a free domain from 77 unless
one is given; :mod:`robomd_diagnoser.ros.network`), so it never meets a real robot's nodes.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

import yaml

from robomd_diagnoser.catalog import load_catalog
from robomd_diagnoser.config import CampaignConfig, ConfigError, WorldSettings
from robomd_diagnoser.paths import find_config
from robomd_diagnoser.ros.bringup import NAMESPACE, SIM_ENV, NodeSpec

PACKAGE = "robomd_ur5e"
#: The success detector's parameters the executor's place-back uses too (held object, its colour).
_SHARED_WITH_DETECTOR = ("state_min_width", "state_max_width", "vision_hsv_low",
                         "vision_hsv_high", "vision_min_blob_px")
#: Seconds added to the operator's prompt timeout for the diagnoser's service calls.
_SERVICE_MARGIN = 60.0


def load_parameters(name: str) -> dict[str, Any]:
    """The ``/**: ros__parameters`` mapping of ``config/ur5e/<name>.yaml``.

    :raises ConfigError: if the file is not a ROS parameter file of that shape.
    """
    path = find_config(f"ur5e/{name}.yaml")
    data = yaml.safe_load(Path(path).read_text())
    try:
        params = data["/**"]["ros__parameters"]
    except (KeyError, TypeError):
        raise ConfigError(f"{path}: expected a ROS parameter file with '/**: ros__parameters:' "
                          "at the top") from None
    if not isinstance(params, dict):
        raise ConfigError(f"{path}: ros__parameters must be a mapping")
    return dict(params)


def domain_env(use_fake_hardware: bool, domain_id: int | None = None) -> dict[str, str]:
    """Environment for the graph's processes (see the module docstring): none for a real robot;
    localhost-only for mock hardware, in ``domain_id`` (None: a Graph picks a free one)."""
    if not use_fake_hardware:
        return {}
    return {**SIM_ENV, **({} if domain_id is None else {"ROS_DOMAIN_ID": str(domain_id)})}


def domain_text(use_fake_hardware: bool, env: Mapping[str, str]) -> str:
    """Which ROS domain the graph uses, for the operator.

    :param use_fake_hardware: a mock-hardware dry run.
    :param env: the graph's environment.
    """
    if use_fake_hardware:
        domain = env["ROS_DOMAIN_ID"]
        return (f"ROS_DOMAIN_ID={domain}, localhost only (mock hardware dry run; the console "
                f"joins with: robomd operator --mock-hardware --domain-id {domain})")
    current = env.get("ROS_DOMAIN_ID")
    return (f"ROS_DOMAIN_ID={current} (from the environment; the lab's domain)" if current
            else "ROS_DOMAIN_ID unset: ROS 2's default domain 0 (the lab's network)")


def ur5e_campaign_nodes(config: CampaignConfig, campaign_file: str | Path, *, robot_ip: str,
                        camera: str = "0", policy: str = "", catalog: str = "",
                        use_fake_hardware: bool = False,
                        out_dir: str | Path | None = None) -> list[NodeSpec]:
    """The nodes of a real-robot campaign.

    :param config: the validated campaign (``world.type: real``).
    :param campaign_file: its YAML (the diagnoser reloads it).
    :param robot_ip: the UR controller's address (ignored with fake hardware).
    :param camera: camera source: device index, video file or stream URL.
    :param policy: policy spec; empty = the campaign's ``policy``.
    :param catalog: catalog for the operator's instructions; empty = the campaign's. It must
        hold every perturbation of the campaign's catalog (same names).
    :param use_fake_hardware: the simulated UR5e instead of the robot (a dry run).
    :param out_dir: campaign directory; the config's ``output`` when None.
    :raises ConfigError: for a campaign that is not ``real``, a missing robot_ip, or a catalog
        without the campaign's perturbations.
    """
    if config.world.type != "real":
        raise ConfigError(f"{config.source}: world.type is {config.world.type!r}; a UR5e campaign "
                          "needs world: {type: real} (see config/campaigns/real_lift.yaml)")
    if not use_fake_hardware and not robot_ip:
        raise ConfigError("robot_ip is required for a real robot (or use fake hardware)")
    catalog_path = str(Path(catalog).resolve()) if catalog else str(config.catalog)
    campaign_names = set(load_catalog(config.catalog).names)
    missing = sorted(campaign_names - set(load_catalog(catalog_path).names))
    if missing:
        raise ConfigError(f"catalog {catalog_path} lacks the campaign's perturbations {missing}; "
                          f"use a catalog with every name of {config.catalog}")
    detector = load_parameters("detector")
    executor = {**load_parameters("executor"), "robot_ip": robot_ip,
                "policy": policy or config.policy, "use_fake_hardware": use_fake_hardware}
    if use_fake_hardware:
        executor.update(load_parameters("fake_hardware"))
    executor.update({name: detector[name] for name in _SHARED_WITH_DETECTOR})
    operator = {**load_parameters("operator"), "catalog": catalog_path,
                "fake_scene": use_fake_hardware}
    rollout_limit = config.world.horizon / float(executor["rate"]) + float(
        executor["home_timeout"]) + _SERVICE_MARGIN
    diagnoser = {"campaign": str(Path(campaign_file).resolve()),
                 "output": str(Path(out_dir or config.output).resolve()),
                 "worlds": [NAMESPACE],
                 "service_timeout": float(operator["timeout_s"]) + float(operator["home_timeout"])
                 + float(operator["digital_timeout"]) + float(operator["place_back_timeout"])
                 + _SERVICE_MARGIN,
                 "rollout_timeout": rollout_limit}
    nodes = [] if use_fake_hardware else [
        NodeSpec(PACKAGE, "camera_node", "camera",
                 parameters={**load_parameters("camera"), "source": camera})]
    return [*nodes,
            NodeSpec(PACKAGE, "policy_executor_node", "policy_executor", parameters=executor),
            NodeSpec(PACKAGE, "success_detector_node", "success_detector",
                     parameters=detector),
            NodeSpec(PACKAGE, "operator_prompt_node", "operator_prompt", parameters=operator),
            NodeSpec("robomd_diagnoser", "diagnoser_node", "diagnoser", parameters=diagnoser)]


def preview_twin_node(task: str) -> NodeSpec:
    """The simulated twin that renders each prompt's scene for the browser console."""
    return NodeSpec(PACKAGE, "preview_twin_node", "preview_twin", parameters={"task": task})


def in_process_world(settings: WorldSettings) -> NoReturn:
    """The ``real`` world type: a robot runs only behind the ROS 2 graph, never in-process.

    :raises ConfigError: always, saying how to start a real campaign.
    """
    raise ConfigError("world type 'real' runs on a robot through the ROS 2 graph; start it with "
                      "`robomd bringup-ur5e` or `ros2 launch robomd_ur5e diagnose.launch.py`, "
                      "not in-process")
