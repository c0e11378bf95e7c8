"""``robomd serve-policy``: serve a policy over the websocket policy protocol."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve-policy",
        help="serve a policy to remote:<ws://host:port> clients (openpi websocket protocol)",
        description="Loads a policy spec and serves it over the msgpack-over-websocket policy "
                    "protocol of open VLA servers: one connection per rollout, the policy is "
                    "reset on connect. Diagnose it from anywhere with --policy "
                    "remote:ws://HOST:PORT.")
    p.add_argument("--policy", required=True,
                   help="policy spec: bc:<weights>, bc_state:<weights>, torchscript:<path>, "
                        "module:<pkg.mod:fn>, robomimic:<file.pth>, lerobot:<dir>")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default: %(default)s)")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to listen on; 0.0.0.0 for other machines "
                        "(default: %(default)s)")
    p.add_argument("--device", default="cpu", help="torch device (default: %(default)s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from robomd_diagnoser.policy import PolicyError
    from robomd_diagnoser.policy_server import serve

    if not 0 <= args.port <= 65535:
        print(f"robomd serve-policy: error: --port must be in 0..65535, got {args.port}",
              file=sys.stderr)
        return 2
    try:
        serve(args.policy, args.port, args.host, args.device)
    except PolicyError as exc:
        print(f"robomd serve-policy: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"robomd serve-policy: error: cannot listen on {args.host}:{args.port} ({exc}); "
              "choose another --port", file=sys.stderr)
        return 2
    return 0
