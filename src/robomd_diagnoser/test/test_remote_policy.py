"""remote:<url> policies: the openpi websocket protocol, against real local servers."""

from __future__ import annotations

import json
import pathlib
import socket
import threading
import time
from collections.abc import Iterator

import msgpack
import numpy as np
import pytest

from robomd_diagnoser.policy import CallablePolicy, PolicyError, make_policy
from robomd_diagnoser.policy_server import PolicyServer
from robomd_diagnoser.remote_policy import (
    PolicyServerLost,
    RemotePolicy,
    RemotePolicyError,
    make_remote_policy,
    pack,
    parse_remote_spec,
    unpack,
)
from robomd_diagnoser.world import WorldError

OBS = {"image": np.full((8, 8, 3), 7, np.uint8), "eef_pos": np.array([0.1, -0.2, 0.3]),
       "gripper": np.array([0.5]), "object_pos": np.array([9.0, 9.0, 9.0])}


def serve(policy: object, **kw: object) -> PolicyServer:
    server = PolicyServer(policy, port=0, **kw)
    server.start()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def echo() -> Iterator[tuple[PolicyServer, list[dict]]]:
    """A server whose policy records what it was sent and acts on eef_pos."""
    seen: list[dict] = []

    def act(obs: dict) -> np.ndarray:
        seen.append(obs)
        return np.r_[obs["eef_pos"], 0.0, 0.0, 0.0, obs["gripper"][0]]

    server = serve(CallablePolicy(act))
    yield server, seen
    server.shutdown()


def test_wire_format_is_openpis_msgpack_numpy() -> None:
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    raw = msgpack.unpackb(pack({"a": arr, "s": np.float32(2.5)}), raw=False)
    assert raw["a"] == {b"__ndarray__": True, b"data": arr.tobytes(), b"dtype": "<f4",
                        b"shape": [2, 3]}
    assert raw["s"] == {b"__npgeneric__": True, b"data": 2.5, b"dtype": "<f4"}
    # a message packed the way openpi's client packs it (shape as a tuple) decodes here
    theirs = msgpack.packb({"x": {b"__ndarray__": True, b"data": arr.tobytes(),
                                  b"dtype": arr.dtype.str, b"shape": (2, 3)}})
    back = unpack(theirs)["x"]
    assert back.dtype == np.float32 and np.array_equal(back, arr) and back.flags.writeable
    with pytest.raises(TypeError, match="dtype object"):
        pack({"bad": np.array([object()])})


def test_remote_policy_acts_over_a_real_server(echo) -> None:
    server, seen = echo
    policy = make_policy(f"remote:ws://127.0.0.1:{server.port}?prompt=lift+the+cube")
    assert isinstance(policy, RemotePolicy) and policy.uses_image
    assert policy.metadata["action_dim"] == 7
    policy.reset()
    action = policy.act(OBS)
    assert action.shape == (7,) and action.dtype == np.float64
    assert np.allclose(action, [0.1, -0.2, 0.3, 0, 0, 0, 0.5], atol=1e-6)
    sent = seen[-1]
    assert sorted(sent) == ["eef_pos", "gripper", "image", "prompt"]  # privileged keys stay home
    assert sent["prompt"] == "lift the cube" and sent["image"].shape == (8, 8, 3)


def test_key_map_renames_and_names_missing_keys(echo, tmp_path: pathlib.Path) -> None:
    server, seen = echo
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"eef_pos": "eef_pos", "gripper": "gripper",
                                "observation/image": "image"}))
    policy = make_remote_policy(f"ws://127.0.0.1:{server.port}?keys={keys}")
    policy.reset()
    policy.act(OBS)
    assert sorted(seen[-1]) == ["eef_pos", "gripper", "observation/image"]
    keys.write_text(json.dumps({"observation/wrist": "wrist_image"}))
    policy = make_remote_policy(f"ws://127.0.0.1:{server.port}?keys={keys}")
    policy.reset()
    with pytest.raises(RemotePolicyError, match="'wrist_image'"):
        policy.act(OBS)


def test_action_chunks_run_open_loop() -> None:
    """An openpi-style server answering with (H, 7) chunks, as pi0 servers do."""
    from websockets.sync.server import serve as ws_serve

    chunk = np.arange(5 * 7, dtype=np.float32).reshape(5, 7) / 100
    queries = []

    def handler(ws) -> None:
        ws.send(pack({}))  # openpi servers may send empty metadata
        for message in ws:
            queries.append(unpack(message))
            ws.send(pack({"actions": chunk, "server_timing": {"infer_ms": 1.0}}))

    with ws_serve(handler, "127.0.0.1", 0, compression=None) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        policy = make_remote_policy(f"ws://127.0.0.1:{server.socket.getsockname()[1]}"
                                    "?open_loop=3")
        assert policy.uses_image  # no metadata says otherwise
        policy.reset()
        actions = [policy.act(OBS) for _ in range(4)]
        server.shutdown()
    assert np.allclose(actions[:3], chunk[:3]) and np.allclose(actions[3], chunk[0])
    assert len(queries) == 2  # two queries for four actions with open_loop=3


@pytest.mark.parametrize("spec, match", [
    ("remote:http://host:8000", "ws:// or wss://"),
    ("remote:ws://host:port", "port is not a number"),
    ("remote:ws://127.0.0.1:9?step_timeout=-1", "step_timeout='-1' must be a positive"),
])
def test_bad_urls_are_named(spec: str, match: str) -> None:
    with pytest.raises(PolicyError, match=match):
        make_policy(spec)


def test_nobody_listening_is_a_named_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused
        with pytest.raises(RemotePolicyError, match="cannot connect.*serve-policy"):
            make_remote_policy(f"ws://127.0.0.1:{port}")


def test_connect_timeout_on_a_silent_server() -> None:
    with socket.socket() as s:  # accepts TCP, never answers the websocket handshake
        s.bind(("127.0.0.1", 0))
        s.listen()
        start = time.monotonic()
        with pytest.raises(RemotePolicyError, match="within 0.5 s .connect_timeout"):
            make_remote_policy(f"ws://127.0.0.1:{s.getsockname()[1]}?connect_timeout=0.5")
        assert time.monotonic() - start < 5


def test_a_server_that_is_not_a_policy_server() -> None:
    from websockets.sync.server import serve as ws_serve

    with ws_serve(lambda ws: (ws.send("hello"), ws.recv()), "127.0.0.1", 0) as text_server:
        threading.Thread(target=text_server.serve_forever, daemon=True).start()
        port = text_server.socket.getsockname()[1]
        with pytest.raises(RemotePolicyError, match="reported an error instead of metadata"):
            make_remote_policy(f"ws://127.0.0.1:{port}")
        text_server.shutdown()


def test_step_timeout_is_a_world_error() -> None:
    def slow(obs: dict) -> np.ndarray:
        time.sleep(1.5)
        return np.zeros(7)

    server = serve(CallablePolicy(slow))
    try:
        policy = make_remote_policy(f"ws://127.0.0.1:{server.port}?step_timeout=0.3")
        policy.reset()
        with pytest.raises(PolicyServerLost, match="no action within 0.3 s") as info:
            policy.act(OBS)
        assert isinstance(info.value, WorldError)  # aborts the rollout, not a policy failure
    finally:
        server.shutdown()


def test_a_policy_exception_on_the_server_comes_back_as_its_traceback() -> None:
    def broken(obs: dict) -> np.ndarray:
        raise KeyError("object_state")

    server = serve(CallablePolicy(broken))
    try:
        policy = make_remote_policy(f"ws://127.0.0.1:{server.port}")
        policy.reset()
        with pytest.raises(RemotePolicyError, match="(?s)reported an error.*KeyError"):
            policy.act(OBS)
    finally:
        server.shutdown()


def test_lost_server_aborts_and_the_next_rollout_reconnects() -> None:
    policy_obj = CallablePolicy(lambda obs: np.ones(7) * 0.1)
    server = serve(policy_obj)
    port = server.port
    policy = make_remote_policy(f"ws://127.0.0.1:{port}")
    policy.reset()
    policy.act(OBS)
    server.shutdown()
    with pytest.raises(PolicyServerLost, match="connection lost"):
        policy.act(OBS)
    with pytest.raises(PolicyServerLost, match="cannot connect"):
        policy.reset()  # still down: the next rollout aborts too
    again = PolicyServer(policy_obj, port=port)
    again.start()
    threading.Thread(target=again.serve_forever, daemon=True).start()
    try:
        policy.reset()
        assert np.allclose(policy.act(OBS), 0.1)
    finally:
        again.shutdown()


def test_parse_keeps_server_query_parameters() -> None:
    url, options = parse_remote_spec("wss://gpu:8000/v1?token=abc&open_loop=4&prompt=hi")
    assert url == "wss://gpu:8000/v1?token=abc"
    assert options == {"open_loop": "4", "prompt": "hi"}


@pytest.mark.parametrize("argv, match", [
    (["--policy", "bc_state:/nonexistent.pt"], "does not exist"),
    (["--policy", "diffusion:x"], "unknown policy kind 'diffusion'; installed: bc"),
    (["--policy", "bc_state:x", "--port", "70000"], "--port must be in 0..65535"),
])
def test_serve_policy_command_rejects_bad_input(argv: list[str], match: str,
                                                capsys: pytest.CaptureFixture) -> None:
    from robomd_diagnoser.cli.main import main

    assert main(["serve-policy", *argv]) == 2
    assert match in capsys.readouterr().err
