"""The browser console's place in a campaign graph (no ROS here).

The console node is robomd_ur5e's ``console_node``; a simulated campaign starts it by package and
executable name like ``ros2 run`` (this package never imports robomd_ur5e). Bound to a loopback
address it needs no token; bound beyond localhost every request must carry the token.
"""

from __future__ import annotations

import argparse
import ipaddress
import secrets
import socket
from pathlib import Path

from robomd_diagnoser.config import ConfigError
from robomd_diagnoser.ros.bringup import NAMESPACE, NodeSpec, find_executable

PACKAGE, EXECUTABLE = "robomd_ur5e", "console_node"
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8765


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def console_token(host: str, token: str = "") -> str:
    """The token the console requires: ``token`` if given, a new random one when ``host`` is
    beyond localhost, else none (``''``)."""
    if token or is_loopback(host):
        return token
    return secrets.token_urlsafe(16)


def console_url(host: str, port: int, token: str = "") -> str:
    """The address to open; a wildcard bind (``0.0.0.0``, ``::``) is shown as this machine's
    name."""
    shown = socket.gethostname() if host in ("0.0.0.0", "::", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def console_node(output: str | Path, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 token: str = "", read_only: bool = True) -> NodeSpec:
    """The console node of a campaign graph.

    :param output: the campaign directory (rollout videos are served from ``<output>/videos``).
    :param host: bind address.
    :param port: TCP port.
    :param token: required token ('' on a loopback address).
    :param read_only: no operator controls (a simulated campaign).
    """
    return NodeSpec(PACKAGE, EXECUTABLE, "console", NAMESPACE, parameters={
        "host": host, "port": int(port), "token": token, "read_only": read_only,
        "output": str(Path(output).resolve())})


def check_listen(host: str, port: int) -> None:
    """Fail before the graph starts if the console could not listen there.

    :raises ConfigError: naming the address and the option to change.
    """
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        socket.create_server((host, port), family=family).close()
    except OSError as exc:
        raise ConfigError(f"--console-host {host} --console-port {port}: cannot listen there "
                          f"({exc}); pick another port or address") from None


def _port(text: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r}: give a TCP port, 1..65535")
    return int(text)


def add_console_arguments(p: argparse.ArgumentParser, text: str) -> None:
    """``--console``, ``--console-host``, ``--console-port`` (bringup and bringup-ur5e)."""
    p.add_argument("--console", action="store_true", help=text)
    p.add_argument("--console-host", default=DEFAULT_HOST,
                   help=f"console bind address (default {DEFAULT_HOST}; any other address needs "
                        "the token printed with the URL)")
    p.add_argument("--console-port", type=_port, default=DEFAULT_PORT,
                   help=f"console port (default {DEFAULT_PORT})")


def console_spec(args: argparse.Namespace, output: str, read_only: bool,
                 label: str) -> NodeSpec | None:
    """The console node for ``args`` (None without ``--console``); prints its URL.

    :raises FileNotFoundError: if robomd_ur5e's console_node is not installed.
    :raises ConfigError: if nothing can listen on ``--console-host``:``--console-port``.
    """
    if not args.console:
        return None
    find_executable(PACKAGE, EXECUTABLE)
    check_listen(args.console_host, args.console_port)
    token = console_token(args.console_host)
    print(f"{label}: console at {console_url(args.console_host, args.console_port, token)}",
          flush=True)
    return console_node(output, host=args.console_host, port=args.console_port, token=token,
                        read_only=read_only)

