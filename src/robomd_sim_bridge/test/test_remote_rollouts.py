"""remote:<url> policies in robosuite rollouts: a served BC policy, a server killed mid-rollout."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys
import threading

import numpy as np
import pytest

from robomd_diagnoser.catalog import load_catalog
from robomd_diagnoser.diagnosis_env import DiagnosisEnv
from robomd_diagnoser.paths import find_config
from robomd_diagnoser.policy import make_policy
from robomd_diagnoser.policy_server import PolicyServer
from robomd_diagnoser.remote_policy import RemotePolicy
from robomd_sim_bridge.plugins import SHIPPED_BC

LIFT = find_config("catalogs/lift.yaml")
HERE = pathlib.Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def world():
    from robomd_sim_bridge.world import RobosuiteWorld

    w = RobosuiteWorld(load_catalog(LIFT))
    yield w
    w.close()


def test_served_bc_policy_acts_on_a_real_observation(world) -> None:
    server = PolicyServer(make_policy(f"bc:{SHIPPED_BC}"), port=0)
    server.start()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        remote = make_policy(f"remote:ws://127.0.0.1:{server.port}")
        assert remote.uses_image  # the server says its policy needs the camera
        world.reset(0)
        obs = world.observation()
        remote.reset()
        action = remote.act(obs)
        local = make_policy(f"bc:{SHIPPED_BC}").act(obs)
        assert action.shape == (7,) and np.allclose(action, local, atol=1e-5)
    finally:
        server.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(port: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "robomd_diagnoser.policy_server", "--policy",
         "module:remote_helpers:make_policy", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    line = proc.stdout.readline()
    assert line.startswith("serving"), f"policy server did not start: {line!r}"
    return proc


class KillServerAt:
    """Wraps the remote policy; at step ``at`` of its first rollout, SIGKILLs the server and
    starts a new one on the same port (so the retried rollout finds a server)."""

    def __init__(self, policy: RemotePolicy, server: subprocess.Popen, port: int, at: int) -> None:
        self.policy, self.server, self.port, self.at = policy, server, port, at
        self.uses_image = policy.uses_image
        self.steps = 0
        self.killed = False

    def reset(self) -> None:
        self.steps = 0
        self.policy.reset()

    def act(self, obs: dict) -> np.ndarray:
        self.steps += 1
        if self.steps == self.at and not self.killed:
            self.server.kill()
            self.server.wait()
            self.killed = True
            self.server = _start_server(self.port)
        return self.policy.act(obs)


def test_server_killed_mid_rollout_aborts_and_the_rollout_is_retried(world) -> None:
    port = _free_port()
    server = _start_server(port)
    wrapper = None
    try:
        remote = make_policy(f"remote:ws://127.0.0.1:{port}?step_timeout=5")
        assert remote.uses_image is False
        wrapper = KillServerAt(remote, server, port, at=5)
        world.policy = wrapper
        records = []
        env = DiagnosisEnv(world, horizon=20, max_retries=2, on_rollout=records.append)
        env.reset(seed=0)
        _, reward, _, _, info = env.step(world.catalog.names.index("light_gray"))
        assert wrapper.killed
        first, second = records
        assert first.status == "aborted" and first.success is None
        assert "connection lost" in first.reason and first.key.endswith("/0")
        assert second.status == "completed" and second.key.endswith("/1")
        assert second.success is not None and second.steps == 20  # judged, ran to the limit
        assert info["status"] == "completed"
    finally:
        world.policy = None
        (wrapper.server if wrapper else server).kill()


def test_eval_policy_names_an_unreachable_server(capsys: pytest.CaptureFixture) -> None:
    from robomd_diagnoser.cli.main import main

    url = f"ws://127.0.0.1:{_free_port()}"
    assert main(["eval-policy", "--policy", f"remote:{url}", "--rollouts", "1"]) == 2
    err = capsys.readouterr().err
    assert f"policy server {url}: cannot connect" in err and "serve-policy" in err
