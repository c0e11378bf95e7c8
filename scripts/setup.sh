#!/usr/bin/env bash
# One-command set-up of the RoboMD workspace from a fresh clone (Debian 12 / Ubuntu 24.04):
# system packages, the pinned Python venv in .venv, the ROS CMake path fix, and colcon build.
# Idempotent: steps whose inputs did not change are skipped. Usage: bash scripts/setup.sh
set -euo pipefail

WS="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$WS"
VENV="$WS/.venv"
PYTHON="${PYTHON:-python3}"
LOCK="$WS/requirements.lock"
step="starting"
mkdir -p "$WS/log"

fail() {
  echo "setup: FAILED at step '$step' (exit $1)." >&2
  echo "setup: fix the error above and rerun 'make setup'; finished steps are skipped." >&2
  exit "$1"
}
trap 'fail $?' ERR
say() { printf '\033[1msetup: %s\033[0m\n' "$*"; }
t0=$SECONDS

# 1. System packages ---------------------------------------------------------------------------
step="system packages"
need=(cmake g++ make git libegl1 libegl-mesa0 libgl1 libgl1-mesa-dri libgles2 libglib2.0-0 openssl
      chromium chromium-driver)  # the browser console's tests drive Debian's chromium
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
[ -f "$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')/Python.h" ] \
  || need+=(python3-dev)
missing=()
for pkg in "${need[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# 2. Python virtual environment with pinned dependencies ---------------------------------------
step="python version"
pyver="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [ "$pyver" != "3.11" ]; then
  echo "setup: ROS 2 Jazzy wheels need Python 3.11; '$PYTHON' is $pyver." >&2
  echo "setup: rerun with PYTHON=/path/to/python3.11 make setup" >&2
  exit 1
fi
step="virtual environment"
[ -x "$VENV/bin/python" ] || { say "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
stamp="$VENV/.robomd-lock-sha"
want="$(sha256sum "$LOCK" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  step="pip install -r requirements.lock"
  say "installing pinned Python packages (first time: several GB, a few minutes)"
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$LOCK" \
    >log/pip-install.out 2>&1 \
    || { grep -v "is ignored: it is neither" log/pip-install.out | tail -n 20; false; }
  "$VENV/bin/python" -m pip check >/dev/null \
    || { "$VENV/bin/python" -m pip check; false; }
  echo "$want" > "$stamp"
fi

# 3. Point the ROS wheels' CMake files at this interpreter's headers ----------------------------
step="ROS CMake path fix"
py_inc="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
np_inc="$("$VENV/bin/python" -c 'import numpy; print(numpy.get_include())')"
{ grep -rl --include='*.cmake' -e '/opt/python/cp311-cp311' "$VENV/share" 2>/dev/null || true; } \
  | xargs -r sed -i \
    -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$np_inc#g" \
    -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/core/include#$np_inc#g" \
    -e "s#/opt/python/cp311-cp311/include/python3.11#$py_inc#g"

# 4. Build the workspace -----------------------------------------------------------------------
step="colcon build"
export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV"
# shellcheck disable=SC1091
source "$VENV/bin/activate"
say "colcon build"
colcon --log-base log build --symlink-install --event-handlers console_cohesion- summary+ \
  --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$VENV/bin/python" \
  >log/colcon-build.out 2>&1 || { cat log/colcon-build.out; false; }
tail -n 3 log/colcon-build.out
say "done in $((SECONDS - t0)) s; 'source scripts/env.sh' to use robomd and the packages"
