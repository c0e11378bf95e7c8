"""Where the browser console sits in a campaign graph: address, token, node spec, CLI options."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from robomd_diagnoser.config import ConfigError
from robomd_diagnoser.console_spec import (
    add_console_arguments,
    check_listen,
    console_node,
    console_spec,
    console_token,
    console_url,
    is_loopback,
)


def test_loopback_addresses_need_no_token_others_get_a_fresh_one() -> None:
    for host in ("127.0.0.1", "127.1.2.3", "::1", "localhost"):
        assert is_loopback(host) and console_token(host) == ""
    for host in ("0.0.0.0", "192.168.1.5", "::", "robot-pc"):
        assert not is_loopback(host)
    first, second = console_token("0.0.0.0"), console_token("0.0.0.0")
    assert len(first) >= 16 and first != second
    assert console_token("0.0.0.0", "given") == "given"
    assert console_token("127.0.0.1", "given") == "given"


def test_url_names_the_machine_for_a_wildcard_bind() -> None:
    import socket

    assert console_url("127.0.0.1", 8765) == "http://127.0.0.1:8765/"
    assert console_url("0.0.0.0", 80, "t") == f"http://{socket.gethostname()}:80/?token=t"
    assert console_url("fe80::1", 8765) == "http://[fe80::1]:8765/"


def test_node_spec_is_found_by_name(tmp_path: Path) -> None:
    spec = console_node(tmp_path, host="0.0.0.0", port=9000, token="t", read_only=True)
    assert (spec.package, spec.executable, spec.name) == ("robomd_ur5e", "console_node", "console")
    assert spec.parameters == {"host": "0.0.0.0", "port": 9000, "token": "t", "read_only": True,
                               "output": str(tmp_path.resolve())}


def test_cli_options(capsys) -> None:
    parser = argparse.ArgumentParser()
    add_console_arguments(parser, "console")
    args = parser.parse_args([])
    assert (args.console, args.console_host, args.console_port) == (False, "127.0.0.1", 8765)
    assert console_spec(args, "out", True, "x") is None
    with pytest.raises(SystemExit) as exc:
        parser.parse_args(["--console-port", "70000"])
    assert exc.value.code == 2 and "--console-port" in capsys.readouterr().err


def test_a_busy_port_is_refused_before_the_graph_starts() -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError, match=f"--console-port {port}: cannot listen"):
            check_listen("127.0.0.1", port)
    check_listen("127.0.0.1", port)  # free again
