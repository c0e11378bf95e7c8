"""Start a campaign's ROS 2 node graph as separate processes, without ``ros2 launch``.

``launch/sim_campaign.launch.py`` is the launch file for a ROS 2 install; :func:`sim_campaign_nodes`
is the one place that says which nodes a simulated campaign runs and with which parameters, and
both the launch file and ``robomd bringup`` use it. Processes are found like ``ros2 run`` finds
them (``<prefix>/lib/<package>/<executable>`` on ``AMENT_PREFIX_PATH``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robomd_diagnoser.config import CampaignConfig
from robomd_diagnoser.ros.network import graph_environment

NAMESPACE = "/robomd"
#: Simulated campaigns talk on localhost only, in a domain of their own, so a laptop or CI run
#: never reaches a real robot's nodes on the lab network (real-robot launches use the lab's
#: domain). A :class:`Graph` started with SIM_ENV takes the first free domain from SIM_DOMAIN_ID
#: unless given one, and binds its DDS sockets to loopback (:mod:`robomd_diagnoser.ros.network`).
SIM_DOMAIN_ID = 77
SIM_ENV = {"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}


@dataclass(frozen=True)
class NodeSpec:
    """One node to start: what ``launch_ros.actions.Node`` would be given."""

    package: str
    executable: str
    name: str
    namespace: str = NAMESPACE
    parameters: dict[str, Any] = field(default_factory=dict)


def sim_campaign_nodes(config: CampaignConfig, campaign_file: str | Path,
                       out_dir: str | Path | None = None) -> list[NodeSpec]:
    """The sim bridge and the diagnoser for a simulated campaign.

    :param config: the validated campaign.
    :param campaign_file: its YAML file (the diagnoser reloads it).
    :param out_dir: campaign directory; the config's ``output`` when None.
    """
    world = config.world
    bridge = {"task": config.task, "catalog": str(config.catalog), "policy": config.policy,
              "robot": world.robot, "camera_size": world.camera_size, "horizon": world.horizon}
    if config.workers == 1:
        bridges = [NodeSpec("robomd_sim_bridge", "sim_bridge_node", "sim_bridge",
                            parameters=bridge)]
    else:  # one simulated world per campaign worker, each behind its own copy of the contract
        bridges = [NodeSpec("robomd_sim_bridge", "sim_bridge_node", f"sim_bridge{i}",
                            namespace=f"{NAMESPACE}/world{i}", parameters=bridge)
                   for i in range(config.workers)]
    diagnoser = {"campaign": str(Path(campaign_file).resolve()),
                 "output": str(Path(out_dir or config.output).resolve()),
                 "worlds": [b.namespace for b in bridges]}
    return [*bridges,
            NodeSpec("robomd_diagnoser", "diagnoser_node", "diagnoser", parameters=diagnoser)]


def find_executable(package: str, executable: str) -> Path:
    """``<prefix>/lib/<package>/<executable>`` for the first prefix on AMENT_PREFIX_PATH.

    :raises FileNotFoundError: naming the package, the executable and the fix.
    """
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        path = Path(prefix) / "lib" / package / executable
        if prefix and path.is_file() and os.access(path, os.X_OK):
            return path
    raise FileNotFoundError(f"executable {executable!r} of package {package!r} not found on "
                            "AMENT_PREFIX_PATH; build the workspace (make setup) and "
                            "'source scripts/env.sh'")


def _param_value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_param_value(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"  # YAML single-quoted: always a string
    return str(value)


def command(spec: NodeSpec) -> list[str]:
    """The command line that starts ``spec`` with its name, namespace and parameters."""
    # The name remap is node-specific (a process may create helper nodes that keep their own
    # names); rcl ignores node-specific namespace remaps, so the namespace applies process-wide.
    default = spec.executable.removesuffix("_node")
    args = [sys.executable, str(find_executable(spec.package, spec.executable)), "--ros-args",
            "-r", f"{default}:__node:={spec.name}", "-r", f"__ns:={spec.namespace}"]
    for key, value in spec.parameters.items():
        args += ["-p", f"{key}:={_param_value(value)}"]
    return args


class Graph:
    """Running node processes; stop them with :meth:`stop` (SIGINT, then SIGKILL).

    :param specs: the nodes.
    :param env: extra environment variables (e.g. :data:`SIM_ENV`: then a free ROS domain from
        :data:`SIM_DOMAIN_ID`, unless ``env`` names one, and loopback-only DDS sockets).
    """

    def __init__(self, specs: list[NodeSpec], env: dict[str, str] | None = None) -> None:
        self.specs = specs
        self.env, self._domain_claim = graph_environment(os.environ, env or {}, SIM_DOMAIN_ID)
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str | None = None) -> None:
        """Start every node (or the one called ``name``) that is not running."""
        for spec in self.specs:
            if (name is None or spec.name == name) and (
                    spec.name not in self.procs or self.procs[spec.name].poll() is not None):
                self.procs[spec.name] = subprocess.Popen(command(spec), env=self.env)

    def wait(self, name: str, timeout: float | None = None) -> int | None:
        """Wait for node ``name`` to exit; its exit code, or None on timeout."""
        try:
            return self.procs[name].wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self, name: str) -> None:
        """SIGKILL one node (fault injection)."""
        self.procs[name].kill()
        self.procs[name].wait()

    def run(self, until: str, label: str) -> int:
        """Start every node, wait for node ``until`` to exit, then stop the rest (also on Ctrl-C).

        :param until: the node whose exit ends the run (the diagnoser).
        :param label: command name for the start and interrupt messages.
        :returns: that node's exit code, or 130 when interrupted.
        """
        print(f"{label}: starting {', '.join(s.namespace + '/' + s.name for s in self.specs)}",
              flush=True)
        try:
            self.start()
            code = self.wait(until)
        except KeyboardInterrupt:
            print(f"{label}: interrupted; stopping the nodes (rerun to resume)", flush=True)
            code = 130
        finally:
            self.stop()
        return int(code or 0)

    def stop(self, timeout: float = 10.0) -> None:
        """Interrupt every node, give them ``timeout`` seconds, then kill what is left."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
