"""Fake UR5e hardware for dry runs: ur_rtde's interfaces backed by the simulated UR5e.

:class:`FakeRobot` wraps a :class:`robomd_sim_bridge.world.RobosuiteWorld` (Lift on a UR5e with a
Robotiq gripper). :class:`FakeRTDEControl`, :class:`FakeRTDEReceive` and :class:`FakeDashboard`
implement exactly the ur_rtde methods the executor calls
(:data:`robomd_ur5e.hardware.CONTROL_METHODS`, :data:`~robomd_ur5e.hardware.RECEIVE_METHODS`,
:data:`~robomd_ur5e.hardware.DASHBOARD_METHODS`), so commanded motions really move an arm:

- ``speedL(xd)`` advances the simulation by one control period with robosuite's OSC_POSE controller
  asked to move the TCP by ``xd * period`` (position) and ``xd[3:] * period`` (rotation);
- ``moveJ(q)`` puts the arm at ``q`` (the fake homes instantly);
- ``getActualTCPPose`` is the end effector in the robot base frame (position, rotation vector).

Faults are injected with :meth:`FakeRobot.inject` (now or after a number of control steps):
``protective_stop``, ``emergency_stop``, ``disconnect`` and ``program_stopped`` behave like the
real controller (commands are refused, the status getters report it). What a test needs to see
is counted: motion commands refused (:attr:`FakeRobot.refused`: a correct executor sends none
after a fault), ``speedStop`` calls, watchdog kicks, each ``speedL``'s twist, acceleration and hold
time, and the TCP position after each control step (:attr:`FakeRobot.positions`).
The pendant's state read when arming (speed slider, robot mode, remote control, loaded program)
is plain attributes. Everything here must be called from one thread (the renderer's GL context is
bound to the thread that created it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import mujoco
import numpy as np

from robomd_diagnoser.catalog import CatalogError, load_catalog
from robomd_diagnoser.policy import RolloutPolicy
from robomd_ur5e.hardware import GripperState

FAULTS = ("protective_stop", "emergency_stop", "disconnect", "program_stopped")
#: robosuite's OSC_POSE output_max: an action of 1 moves this far per control step.
_OSC_POS, _OSC_ROT = 0.05, 0.5
#: Finger gap of the simulated Robotiq 2F-85 when fully open (m).
GRIPPER_MAX_WIDTH = 0.085
#: A closed gripper whose opening stays above this has stopped on an object.
_OBJECT_OPENING = 0.05
_ACTIVE: FakeRobot | None = None


def rotation_vector(rot: np.ndarray) -> np.ndarray:
    """Axis-angle (rotation vector) of a 3x3 rotation matrix, as UR reports TCP orientation."""
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.asarray(rot, dtype=float).reshape(-1))
    if quat[0] < 0:
        quat = -quat
    sin_half = float(np.linalg.norm(quat[1:]))
    if sin_half < 1e-12:
        return np.zeros(3)
    angle = 2.0 * math.atan2(sin_half, quat[0])
    return quat[1:] / sin_half * angle


class FakeRobot:
    """The simulated UR5e behind the fake interfaces.

    :param world: the simulated world (its ``env.control_freq`` is the control rate).
    """

    def __init__(self, world) -> None:
        global _ACTIVE
        self.world = world
        self.period = 1.0 / world.env.control_freq
        robot = world.env.robots[0]
        self._arm_qpos = np.asarray(robot._ref_joint_pos_indexes)
        self._arm_qvel = np.asarray(robot._ref_joint_vel_indexes)
        self.connected = True
        self.program_running = True
        self.protective_stop = False
        self.emergency_stop = False
        self.gripper_closed = False
        self.steps = 0
        self.watchdog_hz = 0.0
        self.kicks = 0
        self.refused = 0
        self.speed_stops = 0
        self.speedl_args: list[tuple[float, float]] = []
        self.speed_slider = 1.0
        self.robot_mode = "RUNNING"
        self.remote_control = True
        self.loaded_program = "<unnamed>"
        self.twists: list[list[float]] = []
        self.positions: list[list[float]] = []
        self._scheduled: list[tuple[int, str]] = []
        _ACTIVE = self

    # ------------------------------------------------------------------ faults
    def inject(self, fault: str, after_steps: int = 0) -> None:
        """Inject ``fault`` now, or after ``after_steps`` more control steps.

        :raises ValueError: for an unknown fault.
        """
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; use one of {', '.join(FAULTS)}")
        if after_steps <= 0:
            self._trigger(fault)
        else:
            self._scheduled.append((self.steps + after_steps, fault))

    def clear_faults(self) -> None:
        """Recover from the active faults (as an operator would on the pendant); faults
        scheduled for later steps stay scheduled."""
        self.connected = self.program_running = True
        self.protective_stop = self.emergency_stop = False

    def _trigger(self, fault: str) -> None:
        if fault == "protective_stop":
            self.protective_stop = True
        elif fault == "emergency_stop":
            self.emergency_stop = True
        elif fault == "disconnect":
            self.connected = False
        else:
            self.program_running = False

    @property
    def can_move(self) -> bool:
        """True when a real controller would accept motion commands."""
        return (self.connected and self.program_running and not self.protective_stop
                and not self.emergency_stop)

    # ------------------------------------------------------------------ motion
    def step(self, twist: Sequence[float]) -> bool:
        """One control period at TCP twist ``twist`` (base frame); False if refused."""
        if not self.can_move:
            self.refused += 1
            return False
        twist = np.asarray(twist, dtype=float)
        action = np.r_[np.clip(twist[:3] * self.period / _OSC_POS, -1, 1),
                       np.clip(twist[3:] * self.period / _OSC_ROT, -1, 1),
                       1.0 if self.gripper_closed else -1.0]
        self.world.env.step(action)
        self.twists.append(twist.tolist())
        self.positions.append(self.tcp_pose()[:3])
        self.steps += 1
        for due, fault in [s for s in self._scheduled if s[0] <= self.steps]:
            self._scheduled.remove((due, fault))
            self._trigger(fault)
        return True

    def move_joints(self, q: Sequence[float]) -> bool:
        """Put the arm at joint positions ``q`` at rest; False if refused."""
        if not self.can_move:
            self.refused += 1
            return False
        data = self.world.data
        data.qpos[self._arm_qpos] = np.asarray(q, dtype=float)
        data.qvel[self._arm_qvel] = 0.0
        mujoco.mj_forward(self.world.model, data)
        return True

    # ------------------------------------------------------------------ state
    def tcp_pose(self) -> list[float]:
        """End effector in the robot base frame: x, y, z, rx, ry, rz."""
        w = self.world
        base_rot = w.data.xmat[w.base_body].reshape(3, 3)
        rot = base_rot.T @ w.data.site_xmat[w.eef_site].reshape(3, 3)
        return [*w.to_base(w.data.site_xpos[w.eef_site]).tolist(), *rotation_vector(rot).tolist()]

    def joint_positions(self) -> list[float]:
        """Arm joint positions, rad."""
        return self.world.data.qpos[self._arm_qpos].tolist()

    def joint_speeds(self) -> list[float]:
        """Arm joint speeds, rad/s."""
        return self.world.data.qvel[self._arm_qvel].tolist()

    def gripper_state(self) -> GripperState:
        """Opening, finger gap and object detection (closed but held open by something)."""
        opening = self.world.gripper_opening()
        return GripperState(opening, opening * GRIPPER_MAX_WIDTH,
                            self.gripper_closed and opening > _OBJECT_OPENING)

    # ------------------------------------------------------------------ scene (operator's hands)
    def apply(self, perturbations: Sequence[str]) -> list[str]:
        """Show the perturbations the simulated scene supports; the names it cannot show.

        :param perturbations: catalog names (of the real catalog); those with the same name in
            the simulated catalog are applied.
        """
        known = [p for p in perturbations if p in self.world.catalog.names]
        self.world.apply(known)
        return [p for p in perturbations if p not in known]

    def reset(self, seed: int) -> None:
        """Nominal scene, objects back at their (seeded) start, arm at its initial pose."""
        self.world.reset(seed)

    def render(self, size: int) -> np.ndarray:
        """The scene camera, upright RGB."""
        return self.world.render(size)


class FakeRTDEControl:
    """``rtde_control.RTDEControlInterface`` subset over a :class:`FakeRobot`."""

    def __init__(self, robot: FakeRobot) -> None:
        self.robot = robot

    def speedL(self, xd: list[float], acceleration: float = 0.25, time: float = 0.0) -> bool:
        self.robot.speedl_args.append((acceleration, time))
        return self.robot.step(xd)

    def speedStop(self, a: float = 10.0) -> bool:
        self.robot.speed_stops += 1
        return self.robot.can_move

    def moveJ(self, q: list[float], speed: float = 1.05, acceleration: float = 1.4,
              asynchronous: bool = False) -> bool:
        return self.robot.move_joints(q)

    def stopJ(self, a: float = 2.0, asynchronous: bool = False) -> None:
        """Nothing to stop: the fake's joint moves are instantaneous."""

    def setWatchdog(self, min_frequency: float = 10.0) -> bool:
        self.robot.watchdog_hz = min_frequency
        return True

    def kickWatchdog(self) -> bool:
        self.robot.kicks += 1
        return self.robot.connected

    def isConnected(self) -> bool:
        return self.robot.connected

    def isProgramRunning(self) -> bool:
        return self.robot.connected and self.robot.program_running

    def disconnect(self) -> None:
        self.robot.connected = False


class FakeRTDEReceive:
    """``rtde_receive.RTDEReceiveInterface`` subset over a :class:`FakeRobot`."""

    def __init__(self, robot: FakeRobot) -> None:
        self.robot = robot

    def getActualTCPPose(self) -> list[float]:
        return self.robot.tcp_pose()

    def getActualQ(self) -> list[float]:
        return self.robot.joint_positions()

    def getActualQd(self) -> list[float]:
        return self.robot.joint_speeds()

    def isConnected(self) -> bool:
        return self.robot.connected

    def getSafetyMode(self) -> int:
        if self.robot.emergency_stop:
            return 7
        return 3 if self.robot.protective_stop else 1

    def isProtectiveStopped(self) -> bool:
        return self.robot.protective_stop

    def isEmergencyStopped(self) -> bool:
        return self.robot.emergency_stop

    def getSpeedScaling(self) -> float:
        return 1.0

    def getTargetSpeedFraction(self) -> float:
        return self.robot.speed_slider

    def disconnect(self) -> None:
        self.robot.connected = False


class FakeDashboard:
    """``dashboard_client.DashboardClient`` subset over a :class:`FakeRobot` (replies as the
    Dashboard server words them)."""

    def __init__(self, robot: FakeRobot) -> None:
        self.robot = robot

    def connect(self, timeout_ms: int = 2000) -> None:
        """Always reachable."""

    def isConnected(self) -> bool:
        return True

    def robotmode(self) -> str:
        return f"Robotmode: {self.robot.robot_mode}"

    def isInRemoteControl(self) -> bool:
        return self.robot.remote_control

    def getLoadedProgram(self) -> str:
        program = self.robot.loaded_program
        return f"Loaded program: {program}" if program else "No program loaded"

    def disconnect(self) -> None:
        """Nothing to close."""


class FakeGripper:
    """The simulated Robotiq gripper as a :class:`robomd_ur5e.hardware.Gripper`."""

    def __init__(self, robot: FakeRobot) -> None:
        self.robot = robot

    def set_closed(self, closed: bool) -> None:
        """Takes effect on the next control step, like a real gripper closing over time."""
        self.robot.gripper_closed = closed

    def state(self) -> GripperState:
        return self.robot.gripper_state()

    def close(self) -> None:
        """Nothing to release."""


def make_fake_robot(task: str, camera_size: int, catalog: str = "") -> FakeRobot:
    """Build the simulated UR5e for ``task`` (its simulated catalog unless ``catalog`` is given).

    :raises CatalogError: if there is no simulated catalog for the task.
    """
    import os

    os.environ.setdefault("MUJOCO_GL", "egl")
    from robomd_diagnoser.paths import find_config
    from robomd_sim_bridge.world import RobosuiteWorld

    try:
        path = catalog or str(find_config(f"catalogs/{task}.yaml"))
    except FileNotFoundError as exc:
        raise CatalogError(f"fake hardware: no simulated catalog for task {task!r} ({exc})") \
            from None
    world = RobosuiteWorld(load_catalog(path), robot="UR5e", camera_size=camera_size)
    return FakeRobot(world)


def expert_policy() -> RolloutPolicy:
    """The simulator's scripted expert, for dry runs on fake hardware only.

    Spec: ``module:robomd_ur5e.fake:expert_policy``. It reads the simulated scene's privileged
    state (where the cube is), so it needs the fake robot of this process.

    :raises RuntimeError: without fake hardware in this process.
    """
    if _ACTIVE is None:
        raise RuntimeError("module:robomd_ur5e.fake:expert_policy drives the simulated arm and "
                           "works only with use_fake_hardware:=true")
    from robomd_sim_bridge.experts import make_expert

    return make_expert(_ACTIVE.world)
