"""Serve a RoboMD policy over the websocket policy protocol (see :mod:`.remote_policy`).

One thread per connection; a connection is one rollout: the policy is reset when a client
connects, the metadata map is sent, then each observation map gets an action map
``{"actions": (7,) float32, "server_timing": {"infer_ms": ...}}``. Calls into the policy are
serialised by a lock. If the policy raises, the traceback is sent as a text frame and the
connection is closed with code 1011, as openpi's server does. ``GET /healthz`` answers 200.

Run it with ``robomd serve-policy --policy SPEC --port P`` or, in an environment without the
``robomd`` command (e.g. a separate LeRobot environment), ``python -m
robomd_diagnoser.policy_server --policy SPEC --port P``.
"""

from __future__ import annotations

import argparse
import http
import logging
import threading
import time
import traceback
from typing import Any

import numpy as np

from robomd_diagnoser.policy import PolicyError, RolloutPolicy, as_action, make_policy
from robomd_diagnoser.remote_policy import pack, unpack

log = logging.getLogger(__name__)


class PolicyServer:
    """Serve ``policy`` at ``ws://host:port``.

    :param policy: the policy to serve.
    :param host: interface to listen on.
    :param port: TCP port; 0 picks a free one (see :attr:`port` after :meth:`start`).
    :param metadata: extra entries of the metadata map (``uses_image`` and ``action_dim`` are
        always set).
    """

    def __init__(self, policy: RolloutPolicy, host: str = "127.0.0.1", port: int = 8000,
                 metadata: dict[str, Any] | None = None) -> None:
        self.policy = policy
        self.host = host
        self.port = port
        self.metadata = {**(metadata or {}), "action_dim": 7,
                         "uses_image": bool(getattr(policy, "uses_image", True))}
        self._lock = threading.Lock()
        self._server: Any = None

    def _health(self, connection: Any, request: Any) -> Any:
        if request.path == "/healthz":
            return connection.respond(http.HTTPStatus.OK, "OK\n")
        return None

    def _handle(self, ws: Any) -> None:
        from websockets.exceptions import ConnectionClosed

        with self._lock:
            self.policy.reset()
        ws.send(pack(self.metadata))
        while True:
            try:
                obs = unpack(ws.recv())
            except ConnectionClosed:
                return
            start = time.monotonic()
            try:
                if not isinstance(obs, dict):
                    raise PolicyError(f"observation must be a map, got {type(obs).__name__}")
                with self._lock:
                    action = as_action(self.policy.act(obs), "served policy")
            except Exception:  # noqa: BLE001 - any policy error goes back to the client
                text = traceback.format_exc()
                log.error("policy raised:\n%s", text)
                try:
                    ws.send(text)
                    ws.close(code=1011, reason="policy error; the traceback was sent")
                except ConnectionClosed:
                    pass
                return
            reply = {"actions": action.astype(np.float32),
                     "server_timing": {"infer_ms": 1000.0 * (time.monotonic() - start)}}
            try:
                ws.send(pack(reply))
            except ConnectionClosed:
                return

    def start(self) -> None:
        """Bind the port (no traffic is served until :meth:`serve_forever`)."""
        from websockets.sync.server import serve

        self._server = serve(self._handle, self.host, self.port, compression=None,
                             max_size=None, process_request=self._health)
        self.port = self._server.socket.getsockname()[1]

    def serve_forever(self) -> None:
        """Serve until :meth:`shutdown` (or Ctrl-C)."""
        if self._server is None:
            self.start()
        self._server.serve_forever()

    def shutdown(self) -> None:
        """Stop serving and close the listening socket."""
        if self._server is not None:
            self._server.shutdown()


def serve(spec: str, port: int, host: str = "127.0.0.1", device: str = "cpu") -> None:
    """Load ``spec`` with :func:`~robomd_diagnoser.policy.make_policy` and serve it forever.

    :raises PolicyError: if the spec cannot be loaded.
    """
    server = PolicyServer(make_policy(spec, device), host, port, {"policy": spec})
    server.start()
    print(f"serving {spec} at ws://{host}:{server.port} (uses_image="
          f"{server.metadata['uses_image']})", flush=True)
    server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    """``python -m robomd_diagnoser.policy_server --policy SPEC --port P [--host H]``."""
    parser = argparse.ArgumentParser(prog="python -m robomd_diagnoser.policy_server",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--policy", required=True)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    try:
        serve(args.policy, args.port, args.host, args.device)
    except PolicyError as exc:
        print(f"serve-policy: error: {exc}", flush=True)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
