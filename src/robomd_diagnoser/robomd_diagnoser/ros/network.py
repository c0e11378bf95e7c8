"""Keeping a localhost graph on this host: its own ROS domain and loopback-only DDS sockets.

A graph whose environment asks for localhost discovery (``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``,
as every simulated and fake-hardware graph does) gets, from :func:`graph_environment`:

- **a free ROS domain** unless the caller gave ``ROS_DOMAIN_ID``: the first domain from
  ``first_domain`` on whose UDP ports (7400 + 250 * domain + 0..249, the RTPS port mapping) no
  socket of this host is bound, reserved by binding its last port until the graph is gone, so two
  default bringups on one host never share a domain (nor their node names);
- **loopback-only sockets** with Fast DDS (the default middleware): a Fast DDS XML profile whose
  only transports are shared memory and UDPv4 restricted to 127.0.0.1
  (``FASTRTPS_DEFAULT_PROFILES_FILE``, and ``FASTDDS_DEFAULT_PROFILES_FILE`` for Fast DDS 3), with
  ``ROS_AUTOMATIC_DISCOVERY_RANGE=SYSTEM_DEFAULT`` so the profile decides. Measured with Fast DDS
  2.14 (ROS Jazzy): every UDP socket of a node is then bound to 127.0.0.1 and the discovery
  multicast group is joined on ``lo`` only; with ``LOCALHOST`` alone, the unicast and multicast
  sockets bind 0.0.0.0, and even with the profile ``LOCALHOST`` adds two send-only sockets bound
  to 0.0.0.0 and to the LAN address. Nodes with the profile and processes without it (a console,
  a test) on the same host still discover each other. With another middleware
  (``RMW_IMPLEMENTATION`` not Fast DDS) ``LOCALHOST`` is kept.

No rclpy here: the environment is built before any node process starts.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Mapping
from pathlib import Path

#: The RTPS port mapping (PB 7400, DG 250): domain d uses UDP ports 7400 + 250 d + 0..249.
PORT_BASE, DOMAIN_GAIN = 7400, 250
#: ROS domains usable on Linux without clashing with ephemeral ports (ROS 2 documentation).
DOMAINS = range(0, 102)
FAST_DDS_RMWS = ("rmw_fastrtps_cpp", "rmw_fastrtps_dynamic_cpp")
PROFILE_VARS = ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE")
LOOPBACK_PROFILE = """<?xml version="1.0" encoding="UTF-8" ?>
<!-- RoboMD: DDS traffic of a localhost graph stays on this host (loopback UDP + shared memory) -->
<profiles xmlns="http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles">
  <transport_descriptors>
    <transport_descriptor>
      <transport_id>robomd_loopback_udp</transport_id>
      <type>UDPv4</type>
      <interfaceWhiteList><address>127.0.0.1</address></interfaceWhiteList>
    </transport_descriptor>
    <transport_descriptor>
      <transport_id>robomd_shm</transport_id>
      <type>SHM</type>
    </transport_descriptor>
  </transport_descriptors>
  <participant profile_name="robomd_loopback" is_default_profile="true">
    <rtps>
      <userTransports>
        <transport_id>robomd_loopback_udp</transport_id>
        <transport_id>robomd_shm</transport_id>
      </userTransports>
      <useBuiltinTransports>false</useBuiltinTransports>
    </rtps>
  </participant>
</profiles>
"""


def domain_ports(domain: int) -> range:
    """The UDP ports RTPS assigns to ``domain``."""
    start = PORT_BASE + DOMAIN_GAIN * domain
    return range(start, start + DOMAIN_GAIN)


def bound_udp_ports() -> set[int]:
    """Local ports of every UDP socket on this host (``/proc/net/udp`` and ``udp6``)."""
    ports = set()
    for name in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local = line.split()[1]  # address:port in hex
            ports.add(int(local.rsplit(":", 1)[1], 16))
    return ports


def claim_free_domain(first: int) -> tuple[int, socket.socket]:
    """The first ROS domain from ``first`` (wrapping round :data:`DOMAINS`) that no socket of
    this host uses, and a socket bound to its last port that reserves it while open.

    :raises RuntimeError: if every domain is in use.
    """
    order = [d for d in DOMAINS if d >= first] + [d for d in DOMAINS if 0 < d < first]
    for domain in order:
        ports = domain_ports(domain)
        if bound_udp_ports().intersection(ports):
            continue
        reservation = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            reservation.bind(("127.0.0.1", ports[-1]))
        except OSError:  # another bringup claimed it between the scan and the bind
            reservation.close()
            continue
        return domain, reservation
    raise RuntimeError(f"every ROS domain from {first} is in use on this host; give one "
                       "explicitly (--domain-id or ROS_DOMAIN_ID)")


def loopback_profile() -> Path:
    """The Fast DDS profile file (:data:`LOOPBACK_PROFILE`), written once per user."""
    directory = Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir())
    path = directory / f"robomd-{os.getuid()}-fastdds-loopback.xml"
    if not path.is_file() or path.read_text() != LOOPBACK_PROFILE:
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(LOOPBACK_PROFILE)
        os.replace(tmp, path)
    return path


def loopback_env(env: Mapping[str, str]) -> dict[str, str]:
    """Variables that bind a localhost process's DDS sockets to 127.0.0.1 (see the module doc);
    empty when ``env`` is not localhost-only, already names a Fast DDS profile, or uses another
    middleware."""
    if env.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "").upper() != "LOCALHOST":
        return {}
    if env.get("RMW_IMPLEMENTATION", FAST_DDS_RMWS[0]) not in FAST_DDS_RMWS:
        return {}
    if any(env.get(var) for var in PROFILE_VARS):
        return {}
    path = str(loopback_profile())
    return {**dict.fromkeys(PROFILE_VARS, path), "ROS_AUTOMATIC_DISCOVERY_RANGE": "SYSTEM_DEFAULT"}


def graph_environment(base: Mapping[str, str], given: Mapping[str, str], first_domain: int
                      ) -> tuple[dict[str, str], socket.socket | None]:
    """The environment of a graph's processes and the socket reserving its domain (or None).

    :param base: the inherited environment.
    :param given: what the caller set for the graph (wins over ``base``).
    :param first_domain: where a localhost graph without a ``ROS_DOMAIN_ID`` in ``given``
        starts looking for a free domain.
    """
    env = {**base, **given}
    reservation = None
    if env.get("ROS_AUTOMATIC_DISCOVERY_RANGE", "").upper() == "LOCALHOST":
        if "ROS_DOMAIN_ID" not in given:
            domain, reservation = claim_free_domain(first_domain)
            env["ROS_DOMAIN_ID"] = str(domain)
        env.update(loopback_env(env))
    return env, reservation
