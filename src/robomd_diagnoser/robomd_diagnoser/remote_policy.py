"""A policy served by another process or machine: the ``remote:<url>`` policy-spec kind.

The wire protocol is the msgpack-over-websocket protocol of open VLA policy servers (openpi's
``WebsocketPolicyServer`` / ``WebsocketClientPolicy``), so RoboMD can diagnose a policy served by
such a server, and :mod:`robomd_diagnoser.policy_server` serves any RoboMD policy spec the same way:

1. The client opens a websocket (``ws://host:port``, no compression, no message size limit);
   the server first sends a metadata map (msgpack).
2. Per control step the client sends an observation map and receives an action map whose
   ``actions`` entry is a (7,) action or an (H, 7) action chunk (executed open-loop, up to
   ``open_loop`` actions per query). A server error arrives as a text frame (its traceback).
3. NumPy values travel as msgpack maps with byte-string keys, openpi's ``msgpack_numpy`` layout:
   arrays ``{b"__ndarray__": True, b"data": <bytes>, b"dtype": <dtype.str>, b"shape": [...]}``,
   scalars ``{b"__npgeneric__": True, b"data": <value>, b"dtype": <dtype.str>}``. (Not the
   ``msgpack-numpy`` package's layout, which openpi servers do not read.)

The protocol has no reset message: each rollout opens a new connection (a RoboMD server resets
its policy per connection), so an episode is a connection.

Errors: a malformed URL, a server that is not a policy server, a server-side exception or a bad
reply raise :class:`RemotePolicyError` (a :class:`~robomd_diagnoser.policy.PolicyError`: fix the
set-up). A server that cannot be reached when a rollout starts, or is lost or silent for longer
than the step timeout during one, raises :class:`PolicyServerLost`, a
:class:`~robomd_diagnoser.world.WorldError`: the rollout is aborted, never counted as a policy
failure, and retried like any aborted rollout.
"""

from __future__ import annotations

from collections import deque
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import numpy as np

from robomd_diagnoser.policy import ACTION_DIM, Observation, PolicyError, as_action
from robomd_diagnoser.policy_keys import load_key_map
from robomd_diagnoser.world import WorldError

#: Observation keys sent to a server unless a key map says otherwise (never privileged state).
SENT_KEYS = ("image", "eef_pos", "gripper", "object")
#: Query parameters of a ``remote:`` URL that configure the client (removed before connecting).
CLIENT_PARAMS = ("prompt", "keys", "open_loop", "connect_timeout", "step_timeout")
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_STEP_TIMEOUT = 30.0


class RemotePolicyError(PolicyError):
    """The remote policy is misconfigured or misbehaves (bad URL, not a policy server, error)."""


class PolicyServerLost(WorldError):
    """The policy server cannot be reached or stopped answering: the rollout is aborted."""


# ------------------------------------------------------------------------ msgpack with NumPy

def _encode(obj: Any) -> Any:
    if isinstance(obj, np.ndarray | np.generic):
        if obj.dtype.kind in "VOc":
            raise TypeError(f"cannot send a NumPy value of dtype {obj.dtype}")
        if isinstance(obj, np.ndarray):
            return {b"__ndarray__": True, b"data": np.ascontiguousarray(obj).tobytes(),
                    b"dtype": obj.dtype.str, b"shape": list(obj.shape)}
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    raise TypeError(f"cannot send a value of type {type(obj).__name__}")


def _decode(obj: dict) -> Any:
    if b"__ndarray__" in obj:
        dtype = np.dtype(obj[b"dtype"])
        if dtype.kind in "VOc":
            raise ValueError(f"refusing NumPy dtype {dtype}")
        return np.frombuffer(obj[b"data"], dtype=dtype).reshape(obj[b"shape"]).copy()
    if b"__npgeneric__" in obj:
        return np.dtype(obj[b"dtype"]).type(obj[b"data"])
    return obj


def pack(obj: Any) -> bytes:
    """Serialise maps, lists, numbers, strings and NumPy values (openpi's layout)."""
    import msgpack

    return msgpack.packb(obj, default=_encode, use_bin_type=True)


def unpack(data: bytes) -> Any:
    """Inverse of :func:`pack` (NumPy arrays come back writable)."""
    import msgpack

    return msgpack.unpackb(data, object_hook=_decode, raw=False, strict_map_key=False)


# ------------------------------------------------------------------------------------- client

def parse_remote_spec(spec: str) -> tuple[str, dict[str, str]]:
    """Split ``ws://host:port/path?prompt=...&open_loop=5`` into the server URL and the client
    options (:data:`CLIENT_PARAMS`); other query parameters stay in the URL.

    :raises RemotePolicyError: for a URL that is not ``ws://`` or ``wss://`` with a host, or an
        unknown option value.
    """
    parts = urlsplit(spec)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise RemotePolicyError(f"remote policy {spec!r}: expected a websocket URL such as "
                                "remote:ws://gpu-host:8000 (scheme ws:// or wss://, with a host)")
    try:
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        raise RemotePolicyError(f"remote policy {spec!r}: the port is not a number") from None
    query = parse_qsl(parts.query, keep_blank_values=True)
    options = {k: v for k, v in query if k in CLIENT_PARAMS}
    rest = [(k, v) for k, v in query if k not in CLIENT_PARAMS]
    url = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(rest), ""))
    return url, options


def _positive(options: dict[str, str], name: str, default: float, spec: str) -> float:
    raw = options.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise RemotePolicyError(f"remote policy {spec!r}: {name}={raw!r} must be a positive "
                                "number")
    return value


class RemotePolicy:
    """Client of a websocket policy server, as a RolloutPolicy (see the module docstring).

    :param url: ``ws://host:port[/path]`` of the server.
    :param connect_timeout: seconds to open the connection and receive the metadata.
    :param step_timeout: seconds to wait for each action.
    :param prompt: sent as ``prompt`` with every observation (language-conditioned policies).
    :param key_map: ``{server key: our key}``; default: send :data:`SENT_KEYS` under their names.
    :param open_loop: actions of a returned chunk executed before querying again (default: all).
    :raises RemotePolicyError: if the server is unreachable, is not a policy server, or its
        metadata is not a msgpack map.
    """

    def __init__(self, url: str, *, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
                 step_timeout: float = DEFAULT_STEP_TIMEOUT, prompt: str | None = None,
                 key_map: dict[str, str] | None = None, open_loop: int | None = None) -> None:
        self.url = url
        self.connect_timeout = connect_timeout
        self.step_timeout = step_timeout
        self.prompt = prompt
        self.key_map = key_map
        self.open_loop = open_loop
        self._ws: Any = None
        self._fresh = False  # the connection has not served a rollout yet
        self._queue: deque[np.ndarray] = deque()
        try:
            self.metadata = self._connect()
        except PolicyServerLost as exc:
            raise RemotePolicyError(f"{exc}; start it (e.g. `robomd serve-policy --policy SPEC "
                                    "--port 8000`) or fix the URL") from None
        self.uses_image = bool(self.metadata.get("uses_image", True))

    def _connect(self) -> dict:
        from websockets.exceptions import InvalidHandshake, InvalidURI
        from websockets.sync.client import connect

        self.close()
        try:
            # entered by hand: the connection outlives this call and close() ends it
            ws = connect(self.url, open_timeout=self.connect_timeout, close_timeout=1.0,
                         compression=None, max_size=None).__enter__()
        except (InvalidURI, InvalidHandshake) as exc:
            raise RemotePolicyError(f"policy server {self.url}: not a websocket policy server "
                                    f"({type(exc).__name__}: {exc})") from None
        except TimeoutError:
            raise PolicyServerLost(f"policy server {self.url}: no connection within "
                                   f"{self.connect_timeout:g} s (connect_timeout)") from None
        except OSError as exc:
            raise PolicyServerLost(f"policy server {self.url}: cannot connect "
                                   f"({exc.strerror or exc})") from None
        try:
            first = ws.recv(timeout=self.connect_timeout)
        except TimeoutError:
            ws.close()
            raise RemotePolicyError(f"policy server {self.url}: sent no metadata within "
                                    f"{self.connect_timeout:g} s; it does not speak the "
                                    "websocket policy protocol") from None
        except Exception as exc:  # noqa: BLE001 - connection closed during the greeting
            raise PolicyServerLost(f"policy server {self.url}: connection lost before the "
                                   f"metadata ({type(exc).__name__})") from None
        metadata = self._decode(ws, first, "metadata")
        if not isinstance(metadata, dict):
            ws.close()
            raise RemotePolicyError(f"policy server {self.url}: its metadata is a "
                                    f"{type(metadata).__name__}, not a map")
        self._ws, self._fresh = ws, True
        return metadata

    def _decode(self, ws: Any, message: bytes | str, what: str) -> Any:
        if isinstance(message, str):
            ws.close()
            raise RemotePolicyError(f"policy server {self.url} reported an error instead of "
                                    f"{what}:\n{message.strip()}")
        try:
            return unpack(message)
        except Exception as exc:  # noqa: BLE001 - msgpack raises several types
            ws.close()
            raise RemotePolicyError(f"policy server {self.url}: {what} is not msgpack "
                                    f"({type(exc).__name__}); it does not speak the websocket "
                                    "policy protocol") from None

    def reset(self) -> None:
        """Start a rollout on a new connection (the server resets its policy per connection).

        :raises PolicyServerLost: if the server cannot be reached (the rollout is aborted).
        """
        self._queue.clear()
        if self._ws is None or not self._fresh:
            self._connect()
        self._fresh = False

    def observation_message(self, obs: Observation) -> dict[str, Any]:
        """The map sent for ``obs``.

        :raises RemotePolicyError: if the key map names an observation key the world lacks.
        """
        if self.key_map is None:
            msg: dict[str, Any] = {k: np.asarray(obs[k]) for k in SENT_KEYS if k in obs}
        else:
            missing = sorted(v for v in self.key_map.values() if v not in obs)
            if missing:
                raise RemotePolicyError(f"remote policy {self.url}: the key map asks for "
                                        f"observation keys {missing}, which this world does not "
                                        f"provide (it has {', '.join(sorted(obs))})")
            msg = {k: np.asarray(obs[v]) for k, v in self.key_map.items()}
        if self.prompt is not None:
            msg["prompt"] = self.prompt
        return msg

    def act(self, obs: Observation) -> np.ndarray:
        """The next action: from the current chunk, else by querying the server.

        :raises PolicyServerLost: if the server is gone or exceeds the step timeout.
        :raises RemotePolicyError: if it reports an error or replies without a usable action.
        """
        if self._queue:
            return self._queue.popleft()
        if self._ws is None:
            raise PolicyServerLost(f"policy server {self.url}: not connected")
        from websockets.exceptions import ConnectionClosed

        ws = self._ws
        try:
            ws.send(pack(self.observation_message(obs)))
            reply = ws.recv(timeout=self.step_timeout)
        except TimeoutError:
            self.close()
            raise PolicyServerLost(f"policy server {self.url}: no action within "
                                   f"{self.step_timeout:g} s (step_timeout)") from None
        except (ConnectionClosed, OSError) as exc:
            self.close()
            raise PolicyServerLost(f"policy server {self.url}: connection lost "
                                   f"({type(exc).__name__}: {exc})") from None
        data = self._decode(ws, reply, "an action")
        actions = data.get("actions") if isinstance(data, dict) else None
        if actions is None:
            keys = sorted(map(str, data)) if isinstance(data, dict) else type(data).__name__
            raise RemotePolicyError(f"policy server {self.url}: the reply has no 'actions' "
                                    f"entry (got {keys})")
        actions = np.asarray(actions, dtype=np.float64)
        if actions.ndim == 2 and actions.shape[1] == ACTION_DIM and len(actions):
            chunk = [as_action(a, f"policy server {self.url}") for a in actions]
            self._queue.extend(chunk[1:self.open_loop])
            return chunk[0]
        return as_action(actions, f"policy server {self.url}")

    def close(self) -> None:
        """Close the connection (a later :meth:`reset` opens a new one)."""
        if self._ws is not None:
            try:
                self._ws.close()
            except Exception:  # noqa: BLE001 - closing a dead socket may fail in many ways
                pass
            self._ws = None


def make_remote_policy(spec: str, world: object | None = None, device: str = "cpu"
                       ) -> RemotePolicy:
    """Policy-spec factory of ``remote:<url>``.

    :param spec: the URL with optional client options in its query: ``prompt`` (text),
        ``keys`` (JSON key-map file), ``open_loop`` (int), ``connect_timeout`` and
        ``step_timeout`` (seconds).
    :param world: unused.
    :param device: unused: the policy runs where it is served.
    :raises RemotePolicyError: for a bad URL or option, or a server that cannot be used.
    """
    del world, device
    url, options = parse_remote_spec(spec)
    open_loop = None
    if "open_loop" in options:
        open_loop = int(_positive(options, "open_loop", 1, spec))
    return RemotePolicy(
        url, connect_timeout=_positive(options, "connect_timeout", DEFAULT_CONNECT_TIMEOUT, spec),
        step_timeout=_positive(options, "step_timeout", DEFAULT_STEP_TIMEOUT, spec),
        prompt=options.get("prompt"),
        key_map=load_key_map(options["keys"]) if "keys" in options else None,
        open_loop=open_loop)
