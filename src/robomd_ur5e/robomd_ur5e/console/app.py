"""The console's web app (FastAPI): one page, its local assets, a websocket and two actions.

``GET /`` the page; ``/static/*`` its script and style (no CDN, no build step);
``WS /ws`` pushes the state snapshot whenever it changes and every new frame (base64 JPEG);
``POST /api/respond`` answers the pending prompt, ``POST /api/arm`` arms or disarms the executor
(403 on a read-only console); ``GET /video/<name>`` serves a rollout video of the campaign.

With a token, every request (page, assets, websocket, actions) must carry it, as ``?token=`` or
as the cookie the page receives when opened with it; anything else gets 403.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs

import uvicorn
from fastapi import FastAPI, HTTPException, WebSocket
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocketClose

from robomd_ur5e.console.state import ConsoleState

STATIC = Path(__file__).parent / "static"
COOKIE = "robomd_console_token"


class Operator(Protocol):
    """What the console's buttons call (:class:`robomd_ur5e.operator_client.OperatorClient`)."""

    def respond(self, prompt_id: str, answer: str, note: str = "") -> tuple[bool, str]: ...

    def arm(self, armed: bool) -> tuple[bool, str]: ...


class Answer(BaseModel):
    """``POST /api/respond``."""

    prompt_id: str
    answer: str
    note: str = ""


class Arm(BaseModel):
    """``POST /api/arm``."""

    armed: bool


class TokenGate:
    """ASGI middleware: 403 for any HTTP request or websocket without the token."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app, self.token = app, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [""])[0]
        cookies = SimpleCookie()
        for name, value in scope.get("headers", []):
            if name == b"cookie":
                cookies.load(value.decode("latin-1"))
        given = query or (cookies[COOKIE].value if COOKIE in cookies else "")
        if not secrets.compare_digest(given.encode(), self.token.encode()):
            if scope["type"] == "websocket":  # closed before accept: the handshake gets 403
                await WebSocketClose(code=1008)(scope, receive, send)
            else:
                await PlainTextResponse("403: this console needs its token: open the URL it "
                                        "printed (…/?token=...)", 403)(scope, receive, send)
            return
        if not query or scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                cookie = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"set-cookie", cookie.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_cookie)


def create_app(state: ConsoleState, operator: Operator | None, token: str = "",
               max_fps: float = 10.0) -> ASGIApp:
    """The console app.

    :param state: what it shows.
    :param operator: answers prompts and arms the executor; None for a read-only console.
    :param token: required on every request when not empty.
    :param max_fps: frames per second sent to each page at most.
    """
    app = FastAPI(title="RoboMD console", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def operator_or_403() -> Operator:
        if operator is None:
            raise HTTPException(403, "this console is read-only (a simulated campaign)")
        return operator

    @app.get("/")
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    @app.get("/video/{name}")
    def video(name: str) -> FileResponse:
        path = state.video_path(name)
        if path is None:
            raise HTTPException(404, f"no video {name!r} in the campaign's videos/")
        return FileResponse(path)

    @app.post("/api/respond")
    def respond(body: Answer) -> dict[str, Any]:  # a plain def: FastAPI runs it in a thread
        client = operator_or_403()
        try:
            accepted, message = client.respond(body.prompt_id, body.answer, body.note)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        state.log(f"{body.answer} for prompt {body.prompt_id}: {message}")
        return {"accepted": accepted, "message": message}

    @app.post("/api/arm")
    def arm(body: Arm) -> dict[str, Any]:
        ok, message = operator_or_403().arm(body.armed)
        state.log(f"{'arm' if body.armed else 'disarm'}: {message}")
        return {"ok": ok, "message": message}

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        period = 1.0 / max(max_fps, 0.1)

        async def push() -> None:
            version, seqs = -1, {}
            while True:
                if state.version != version:
                    snap = state.snapshot()
                    version = snap["version"]
                    await websocket.send_json({"type": "state", **snap})
                for name, frame in state.frames().items():
                    if seqs.get(name) != frame.seq:
                        seqs[name] = frame.seq
                        await websocket.send_json({"type": "frame", "name": name,
                                                   "seq": frame.seq, "tag": frame.tag,
                                                   "data": frame.data})
                await asyncio.sleep(period)

        async def until_closed() -> None:
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass

        tasks = [asyncio.create_task(push()), asyncio.create_task(until_closed())]
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        for task in done:  # a send to a page that went away ends push(); nothing to report
            task.exception()

    return TokenGate(app, token) if token else app


class ConsoleServer:
    """uvicorn serving the app in a background thread.

    :param app: the ASGI app.
    :param host: bind address.
    :param port: TCP port.
    """

    def __init__(self, app: ASGIApp, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port,
                                                    log_level="warning", lifespan="off"))
        self._thread = threading.Thread(target=self.server.run, daemon=True, name="console-http")

    def start(self, timeout: float = 10.0) -> None:
        """Start serving.

        :raises OSError: if it cannot listen on ``host:port`` (e.g. the port is in use).
        """
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise OSError(f"cannot serve the console on {self.host}:{self.port} (port in "
                              "use? pick another with the port parameter / --console-port)")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop serving (open pages lose their connection)."""
        self.server.should_exit = True
        self._thread.join(timeout=5.0)
