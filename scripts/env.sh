# Source this file in an interactive shell: puts the venv, the built workspace and the `robomd`
# command on the path (the equivalent of sourcing a ROS install's setup.bash).
#   source scripts/env.sh
_robomd_ws="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
if [ ! -f "$_robomd_ws/install/local_setup.bash" ] || [ ! -x "$_robomd_ws/.venv/bin/python" ]; then
  echo "robomd: workspace not set up; run 'make setup' in $_robomd_ws first" >&2
  return 1 2>/dev/null || exit 1
fi
# shellcheck disable=SC1091
source "$_robomd_ws/.venv/bin/activate"
export AMENT_PREFIX_PATH="$_robomd_ws/.venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
# shellcheck disable=SC1091
source "$_robomd_ws/install/local_setup.bash"
export PATH="$_robomd_ws/install/robomd_diagnoser/lib/robomd_diagnoser:$PATH"
export MUJOCO_GL="${MUJOCO_GL:-egl}"
export PYOPENGL_PLATFORM="${PYOPENGL_PLATFORM:-$MUJOCO_GL}"
export ROBOMD_WS="$_robomd_ws"
unset _robomd_ws
