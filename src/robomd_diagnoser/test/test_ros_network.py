"""A localhost graph's network: its own free ROS domain and DDS sockets bound to loopback only."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from robomd_diagnoser.ros.bringup import SIM_DOMAIN_ID, SIM_ENV, Graph
from robomd_diagnoser.ros.network import (
    bound_udp_ports,
    claim_free_domain,
    domain_ports,
    graph_environment,
    loopback_env,
)

rclpy = pytest.importorskip("rclpy")
from std_msgs.msg import String  # noqa: E402

#: A node that publishes on ``chatter`` until killed.
TALKER = """
import time, rclpy
from std_msgs.msg import String
rclpy.init()
node = rclpy.create_node("loopback_talker")
pub = node.create_publisher(String, "chatter", 10)
print("up", flush=True)
while True:
    pub.publish(String(data="hello"))
    time.sleep(0.05)
"""


def _udp_addresses(pid: int) -> set[str]:
    """Local addresses (ip:port) of the UDP sockets process ``pid`` holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[9] in inodes:
            hex_ip, hex_port = fields[1].split(":")
            ip = socket.inet_ntoa(bytes.fromhex(hex_ip)[::-1])
            found.add(f"{ip}:{int(hex_port, 16)}")
    return found


def test_two_default_graphs_get_different_free_domains() -> None:
    first, second = Graph([], SIM_ENV), Graph([], SIM_ENV)
    a, b = int(first.env["ROS_DOMAIN_ID"]), int(second.env["ROS_DOMAIN_ID"])
    assert a != b
    assert domain_ports(a)[-1] in bound_udp_ports(), "the first graph's domain stays reserved"
    given = Graph([], {**SIM_ENV, "ROS_DOMAIN_ID": str(a)})
    assert given.env["ROS_DOMAIN_ID"] == str(a), "a given domain is kept"


def test_a_domain_with_a_bound_port_is_skipped() -> None:
    domain, reservation = claim_free_domain(SIM_DOMAIN_ID)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind(("127.0.0.1", domain_ports(domain + 1)[10]))  # a participant's port
        reservation.close()
        again, second = claim_free_domain(domain)
        other, third = claim_free_domain(domain)
    assert again == domain and other not in (domain, domain + 1)
    second.close()
    third.close()


def test_the_real_robot_environment_is_left_alone() -> None:
    env, claim = graph_environment({"ROS_DOMAIN_ID": "3"}, {}, SIM_DOMAIN_ID)
    assert claim is None and env == {"ROS_DOMAIN_ID": "3"}
    assert loopback_env({"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
                         "RMW_IMPLEMENTATION": "rmw_cyclonedds_cpp"}) == {}


def test_a_localhost_graph_binds_only_loopback_and_still_reaches_a_local_client() -> None:
    graph = Graph([], {**SIM_ENV, "ROS_DOMAIN_ID": os.environ["ROS_DOMAIN_ID"]})
    assert graph.env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "SYSTEM_DEFAULT"
    assert "127.0.0.1" in Path(graph.env["FASTRTPS_DEFAULT_PROFILES_FILE"]).read_text()
    talker = subprocess.Popen([sys.executable, "-c", TALKER], env=graph.env,
                              stdout=subprocess.PIPE, text=True)
    rclpy.init()  # this process: localhost discovery without the profile (conftest)
    try:
        assert talker.stdout.readline().strip() == "up"
        node = rclpy.create_node("loopback_listener")
        got = []
        node.create_subscription(String, "chatter", lambda m: got.append(m.data), 10)
        deadline = time.monotonic() + 20
        while not got and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.1)
        assert got == got[:1] * len(got) and got, "the client received nothing"
        addresses = _udp_addresses(talker.pid)
        assert addresses, "the node has no UDP socket"
        outside = {a for a in addresses if not a.startswith(("127.0.0.1:", "239.255.0.1:"))}
        assert not outside, f"DDS sockets bound outside loopback: {sorted(outside)}"
        node.destroy_node()
    finally:
        talker.kill()
        talker.wait()
        rclpy.shutdown()
