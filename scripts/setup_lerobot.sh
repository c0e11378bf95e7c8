#!/usr/bin/env bash
# Create the separate LeRobot environment .venv-lerobot (lerobot 0.4.4 with its own torch < 2.11;
# several GB). `lerobot:<dir>` policies run in it behind the websocket policy server.
# Idempotent: skipped when requirements-lerobot.in did not change. Usage: make lerobot-env
set -euo pipefail

WS="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$WS/.venv-lerobot"
REQ="$WS/requirements-lerobot.in"
PYTHON="${PYTHON:-python3}"
stamp="$VENV/.robomd-req-sha"
want="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "lerobot-env: $VENV is up to date"
  exit 0
fi
mkdir -p "$WS/log"
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
echo "lerobot-env: installing $(grep -v '^#' "$REQ" | xargs) into $VENV (several GB, minutes)"
"$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REQ" \
  >"$WS/log/pip-lerobot.out" 2>&1 \
  || { grep -v "is ignored: it is neither" "$WS/log/pip-lerobot.out" | tail -n 20; exit 1; }
"$VENV/bin/python" -c "import lerobot.policies.factory, websockets, msgpack"
echo "$want" >"$stamp"
echo "lerobot-env: ready; lerobot:<dir> policies now load through it"
