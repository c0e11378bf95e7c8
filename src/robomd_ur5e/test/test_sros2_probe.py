"""The SROS2 measurement: a secured talker must not reach an unsecured listener."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("rclpy")
if shutil.which("openssl") is None:
    pytest.skip("the openssl command is needed to make the keystore", allow_module_level=True)

from robomd_ur5e.sros2_probe import probe  # noqa: E402


def test_the_control_run_without_security_is_heard() -> None:
    code, line = probe(enforce=False)
    assert code == 1 and line.startswith("NOT enforced"), line


def test_a_secured_talker_is_refused_or_unheard() -> None:
    code, line = probe()
    assert code in (0, 3), f"DDS Security was requested but not enforced: {line}"
    if code == 3:  # the Jazzy wheels: Fast DDS built without its security plugins
        assert "security" in line.lower()
