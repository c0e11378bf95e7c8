"""The UR5e's hardware interfaces: ur_rtde control/receive/IO, the gripper, and health polling.

:func:`connect_robot` builds the real ``rtde_control.RTDEControlInterface`` and
``rtde_receive.RTDEReceiveInterface`` (or, for a dry run, the fakes of :mod:`robomd_ur5e.fake`,
which implement exactly the methods listed in :data:`CONTROL_METHODS` and friends; a test checks
those exist on the installed ur_rtde classes); :func:`connect_dashboard` the Dashboard client that
:func:`arming_refusal` reads before the executor may be armed.

Grippers (parameter ``gripper``):
``robotiq``  a Robotiq 2F gripper through the Robotiq URCap's socket on port 63352
             (:class:`RobotiqGripper`: position and object detection are read back by a
             background thread; the control loop only reads its latest, time-stamped value);
``digital``  a gripper on a standard digital output through ``rtde_io`` (:class:`DigitalGripper`:
             no feedback, so the width and object detection are unknown).
"""

from __future__ import annotations

import math
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

#: ur_rtde methods the executor calls, per interface (the fakes implement exactly these).
CONTROL_METHODS = ("speedL", "speedStop", "moveJ", "stopJ", "setWatchdog", "kickWatchdog",
                   "isConnected", "isProgramRunning", "disconnect")
RECEIVE_METHODS = ("getActualTCPPose", "getActualQ", "getActualQd", "isConnected",
                   "getSafetyMode", "isProtectiveStopped", "isEmergencyStopped",
                   "getSpeedScaling", "getTargetSpeedFraction", "disconnect")
IO_METHODS = ("setStandardDigitalOut", "disconnect")
#: ``dashboard_client.DashboardClient`` methods the arming check calls.
DASHBOARD_METHODS = ("connect", "isConnected", "robotmode", "isInRemoteControl",
                     "getLoadedProgram", "disconnect")
#: UR safety modes (getSafetyMode) in which the arm may move.
SAFE_MODES = {1: "normal", 2: "reduced"}
SAFETY_MODE_NAMES = {3: "protective stop", 4: "recovery", 5: "safeguard stop",
                     6: "system emergency stop", 7: "robot emergency stop", 8: "violation",
                     9: "fault", 10: "validate joint id", 11: "undefined",
                     12: "automatic mode safeguard stop", 13: "three-position enabling stop"}
GRIPPERS = ("robotiq", "digital")


class RobotFault(RuntimeError):
    """The robot cannot be commanded (stop, lost connection, program stopped): abort, not fail."""


def fault_reason(control: Any, receive: Any) -> str | None:
    """Poll the robot's state; the reason it must not move, or None when it may.

    Polls the controller directly each call instead of trusting ur_rtde's background thread.

    :param control: an ``RTDEControlInterface`` (or fake).
    :param receive: an ``RTDEReceiveInterface`` (or fake).
    """
    try:
        if not receive.isConnected() or not control.isConnected():
            return "lost connection to the robot (RTDE)"
        if receive.isEmergencyStopped():
            return "emergency stop"
        if receive.isProtectiveStopped():
            return "protective stop"
        mode = int(receive.getSafetyMode())
        if mode not in SAFE_MODES:
            return f"safety mode {SAFETY_MODE_NAMES.get(mode, mode)}"
        if not control.isProgramRunning():
            return ("the RTDE control program is not running (stopped on the teach pendant, or "
                    "the robot left remote control)")
    except RuntimeError as exc:  # ur_rtde raises when the socket is gone
        return f"lost connection to the robot ({exc})"
    return None


@dataclass(frozen=True)
class ArmingChecks:
    """What must hold before the executor may be armed (besides :func:`fault_reason`).

    :param min_speed_scaling: lowest accepted speed scaling: the pendant's speed slider times the
        controller's own scaling. A rollout at reduced speed is not the policy's rollout, so a
        campaign expects 1.0; lower it only for a first, supervised run.
    :param require_remote_control: the pendant must be in Remote Control mode.
    :param expected_program: text the Dashboard's loaded program must contain (e.g. the program
        holding the ur_rtde URCap node); empty: not checked.
    """

    min_speed_scaling: float = 1.0
    require_remote_control: bool = True
    expected_program: str = ""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.min_speed_scaling) and 0.0 < self.min_speed_scaling <= 1.0):
            raise ValueError(f"min_speed_scaling={self.min_speed_scaling!r}: a fraction in "
                             "(0, 1]; 1.0 for a campaign")


def _dashboard_value(reply: str) -> str:
    """``'Robotmode: RUNNING'`` -> ``'RUNNING'``."""
    return reply.rpartition(":")[2].strip()


def arming_refusal(control: Any, receive: Any, dashboard: Any,
                   checks: ArmingChecks) -> str | None:
    """Why the executor must not be armed now, or None.

    Checks, in order: :func:`fault_reason`; the speed scaling (``getSpeedScaling`` times
    ``getTargetSpeedFraction``) against ``checks.min_speed_scaling``; and on the Dashboard server
    (port 29999): robot mode RUNNING, remote control, the expected program loaded.

    :param control: an ``RTDEControlInterface`` (or fake).
    :param receive: an ``RTDEReceiveInterface`` (or fake).
    :param dashboard: a connected ``dashboard_client.DashboardClient`` (or fake).
    :param checks: what to require.
    """
    reason = fault_reason(control, receive)
    if reason:
        return reason
    try:
        limiter, slider = float(receive.getSpeedScaling()), float(receive.getTargetSpeedFraction())
        if limiter * slider < checks.min_speed_scaling - 1e-6:
            return (f"speed scaling {limiter * slider:.2f} (pendant speed slider {slider:.0%}, "
                    f"controller scaling {limiter:.2f}) is below min_speed_scaling "
                    f"{checks.min_speed_scaling:.2f}: set the slider to 100% (a slowed rollout is "
                    "not the policy's rollout) or lower min_speed_scaling for a supervised run")
        if not dashboard.isConnected():
            dashboard.connect()
        mode = _dashboard_value(dashboard.robotmode()).upper()
        if mode != "RUNNING":
            return (f"robot mode {mode or '?'} (Dashboard): power on and release the brakes "
                    "until the pendant shows RUNNING (Normal)")
        if checks.require_remote_control and not dashboard.isInRemoteControl():
            return ("the robot is in local control: switch the pendant to Remote Control (top "
                    "right) or set require_remote_control: false")
        if checks.expected_program:
            loaded = dashboard.getLoadedProgram()
            if checks.expected_program not in loaded:
                return (f"the Dashboard reports {loaded.strip()!r}, expected a program "
                        f"containing {checks.expected_program!r}: load it on the pendant")
    except RuntimeError as exc:  # ur_rtde raises on a closed socket or a refused command
        return f"cannot read the robot's state for arming ({exc})"
    return None


@dataclass(frozen=True)
class GripperState:
    """What the gripper reports.

    :param opening: [0, 1], 1 = fully open (the commanded state if there is no feedback).
    :param width: finger gap in metres; NaN when unknown.
    :param object_detected: True/False, or None when the gripper cannot tell.
    """

    opening: float
    width: float
    object_detected: bool | None


class Gripper(Protocol):
    """A parallel gripper: open/close and read back."""

    def set_closed(self, closed: bool) -> None:
        """Close (True) or open (False)."""

    def state(self) -> GripperState:
        """The current state."""

    def close(self) -> None:
        """Release the connection."""


class RobotiqGripper:
    """Client of the Robotiq URCap's gripper socket (ASCII ``SET``/``GET`` commands).

    One background thread owns the socket: it sends the latest requested position and reads the
    position and object status back every ``poll_period``. :meth:`state` and :meth:`set_closed`
    never touch the socket, so a slow or silent URCap cannot stall the control loop; a reading
    older than ``max_age`` (or a socket error) makes :meth:`state` raise :class:`RobotFault`.

    :param host: the robot's IP address (the URCap serves the socket on the controller).
    :param port: the URCap's port, 63352.
    :param timeout: socket timeout, seconds (connection, activation and each exchange).
    :param max_width: finger gap when fully open (0.085 m for a 2F-85, 0.14 m for a 2F-140).
    :param speed: closing speed 0..255.
    :param force: grip force 0..255.
    :param poll_period: seconds between two readings.
    :param max_age: oldest reading :meth:`state` accepts, seconds.
    :raises RobotFault: if the socket cannot be reached or the gripper does not activate.
    """

    def __init__(self, host: str, port: int = 63352, timeout: float = 2.0,
                 max_width: float = 0.085, speed: int = 255, force: int = 100,
                 poll_period: float = 0.02, max_age: float = 0.25) -> None:
        self.max_width, self.speed, self.force = max_width, speed, force
        self.poll_period, self.max_age = poll_period, max_age
        try:
            self._sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise RobotFault(f"cannot reach the Robotiq gripper socket at {host}:{port} ({exc}); "
                             "is the Robotiq URCap installed and the gripper activated on the "
                             "pendant? Or use gripper:=digital") from None
        self._buffer = b""
        if self._get("STA") != 3:
            self._set("ACT", 1)
            self._set("GTO", 1)
        self._lock = threading.Lock()
        self._wanted: bool | None = None
        self._reading: tuple[GripperState, float] = (self._read(), time.monotonic())
        self._error = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="robotiq", daemon=True)
        self._thread.start()

    # Socket exchanges: only the constructor and then the polling thread call these.
    def _send(self, line: str) -> str:
        try:
            self._sock.sendall(line.encode() + b"\n")
            while b"\n" not in self._buffer:
                chunk = self._sock.recv(1024)
                if not chunk:
                    raise RobotFault("the Robotiq gripper socket closed")
                self._buffer += chunk
        except OSError as exc:
            raise RobotFault(f"Robotiq gripper socket error: {exc}") from None
        reply, self._buffer = self._buffer.split(b"\n", 1)
        return reply.decode().strip()

    def _set(self, var: str, value: int) -> None:
        reply = self._send(f"SET {var} {int(value)}")
        if reply != "ack":
            raise RobotFault(f"Robotiq gripper refused SET {var} {value}: {reply!r}")

    def _get(self, var: str) -> int:
        reply = self._send(f"GET {var}")
        name, _, value = reply.partition(" ")
        if name != var or not value.strip().lstrip("-").isdigit():
            raise RobotFault(f"unexpected Robotiq reply to GET {var}: {reply!r}")
        return int(value)

    def _read(self) -> GripperState:
        """Position (0 open .. 255 closed) as opening/width; OBJ 1 or 2 = stopped on an object."""
        pos = self._get("POS")
        opening = 1.0 - min(max(pos, 0), 255) / 255.0
        return GripperState(opening, opening * self.max_width, self._get("OBJ") in (1, 2))

    def _poll(self) -> None:
        sent: bool | None = None
        try:
            while not self._stop.is_set():
                with self._lock:
                    wanted = self._wanted
                if wanted is not None and wanted != sent:
                    self._set("SPE", self.speed)
                    self._set("FOR", self.force)
                    self._set("POS", 255 if wanted else 0)
                    self._set("GTO", 1)
                    sent = wanted
                reading = self._read()
                with self._lock:
                    self._reading = (reading, time.monotonic())
                self._stop.wait(self.poll_period)
        except RobotFault as exc:
            with self._lock:
                self._error = str(exc)

    def set_closed(self, closed: bool) -> None:
        """Ask for fully closed (255) or fully open (0); the polling thread sends it."""
        with self._lock:
            self._wanted = closed

    def state(self) -> GripperState:
        """The latest reading.

        :raises RobotFault: after a socket error, or if the reading is older than ``max_age``.
        """
        with self._lock:
            (reading, at), error = self._reading, self._error
        if error:
            raise RobotFault(error)
        age = time.monotonic() - at
        if age > self.max_age:
            raise RobotFault(f"the Robotiq gripper's state is {age:.2f} s old (limit "
                             f"{self.max_age} s): the URCap socket stopped answering")
        return reading

    def close(self) -> None:
        """Stop the polling thread and close the socket."""
        self._stop.set()
        self._sock.close()
        self._thread.join(timeout=5.0)


class DigitalGripper:
    """A gripper driven by a standard digital output (no feedback).

    :param io: an ``rtde_io.RTDEIOInterface`` (or fake).
    :param pin: the standard digital output, 0..7.
    :param close_level: the output level that closes the gripper.
    """

    def __init__(self, io: Any, pin: int, close_level: bool = True) -> None:
        if not 0 <= pin <= 7:
            raise ValueError(f"gripper_pin={pin}: a standard digital output is 0..7")
        self.io, self.pin, self.close_level = io, pin, close_level
        self._closed = False

    def set_closed(self, closed: bool) -> None:
        """Set the output; raises RobotFault if the controller refuses."""
        if not self.io.setStandardDigitalOut(self.pin, closed == self.close_level):
            raise RobotFault(f"setStandardDigitalOut({self.pin}) was refused by the controller")
        self._closed = closed

    def state(self) -> GripperState:
        """The commanded state (the output gives no width or object feedback)."""
        return GripperState(0.0 if self._closed else 1.0, math.nan, None)

    def close(self) -> None:
        """Disconnect the IO interface."""
        self.io.disconnect()


def connect_robot(robot_ip: str, frequency: float = -1.0) -> tuple[Any, Any]:
    """Connect ur_rtde's control and receive interfaces to the robot.

    :param robot_ip: the controller's address; the robot must be in remote control mode.
    :param frequency: RTDE frequency (-1: the controller's default, 500 Hz on e-Series).
    :raises RobotFault: naming the address and what to check.
    """
    import rtde_control
    import rtde_receive

    try:
        receive = rtde_receive.RTDEReceiveInterface(robot_ip, frequency)
        control = rtde_control.RTDEControlInterface(robot_ip, frequency)
    except RuntimeError as exc:
        raise RobotFault(f"cannot connect to the UR controller at {robot_ip} over RTDE ({exc}); "
                         "check the network, that the robot is powered on, brakes released and "
                         "in remote control mode (docs/real_robot.md)") from None
    return control, receive


def connect_dashboard(robot_ip: str) -> Any:
    """Connect to the controller's Dashboard server (port 29999), read by the arming check.

    :raises RobotFault: naming the address and what to check.
    """
    import dashboard_client

    dashboard = dashboard_client.DashboardClient(robot_ip)
    try:
        dashboard.connect()
    except RuntimeError as exc:
        raise RobotFault(f"cannot connect to the UR Dashboard server at {robot_ip}:29999 ({exc}); "
                         "check the network and that the controller runs PolyScope 5 "
                         "(docs/real_robot.md)") from None
    return dashboard


def make_gripper(kind: str, robot_ip: str, *, pin: int = 0, close_level: bool = True,
                 max_width: float = 0.085) -> Gripper:
    """The gripper named by ``kind`` (see the module docstring) on the real robot.

    :raises ValueError: for an unknown kind.
    :raises RobotFault: if it cannot be reached.
    """
    if kind == "robotiq":
        return RobotiqGripper(robot_ip, max_width=max_width)
    if kind == "digital":
        import rtde_io

        try:
            io = rtde_io.RTDEIOInterface(robot_ip)
        except RuntimeError as exc:
            raise RobotFault(f"cannot connect rtde_io to {robot_ip} ({exc})") from None
        return DigitalGripper(io, pin, close_level)
    raise ValueError(f"gripper={kind!r}: use one of {', '.join(GRIPPERS)}")
