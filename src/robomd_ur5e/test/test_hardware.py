"""Gripper clients and robot health polling, without a robot."""

from __future__ import annotations

import math
import socketserver
import threading
import time

import pytest

from robomd_ur5e.hardware import DigitalGripper, RobotFault, RobotiqGripper, fault_reason


class _RobotiqHandler(socketserver.StreamRequestHandler):
    """The Robotiq URCap's ASCII protocol, as far as the client uses it."""

    def handle(self) -> None:
        state = self.server.state
        for raw in self.rfile:
            self.server.answering.wait()  # cleared: the URCap stops answering
            if self.server.drop.is_set():  # the controller drops the connection
                return
            words = raw.decode().split()
            self.server.log.append(" ".join(words))  # before the answer the client waits for
            if words[0] == "SET":
                state[words[1]] = int(words[2])
                if words[1] == "POS":
                    state["OBJ"] = 2 if int(words[2]) > 0 else 3
                self.wfile.write(b"ack\n")
            else:
                value = 3 if words[1] == "STA" and state.get("ACT") else state.get(words[1], 0)
                self.wfile.write(f"{words[1]} {value}\n".encode())


@pytest.fixture
def robotiq():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _RobotiqHandler)
    server.daemon_threads = True  # a client left open by a failed test must not block teardown
    server.state, server.log = {}, []
    server.answering = threading.Event()
    server.answering.set()
    server.drop = threading.Event()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.answering.set()
    server.shutdown()
    server.server_close()


def _eventually(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_robotiq_client_activates_moves_and_reads_back(robotiq) -> None:
    gripper = RobotiqGripper("127.0.0.1", robotiq.server_address[1], max_width=0.085)
    assert robotiq.log[:3] == ["GET STA", "SET ACT 1", "SET GTO 1"]
    gripper.set_closed(True)
    assert _eventually(lambda: "SET POS 255" in robotiq.log)
    robotiq.state["POS"] = 153  # the fingers stopped on an object
    assert _eventually(lambda: gripper.state().opening == pytest.approx(0.4))
    state = gripper.state()
    assert state.width == pytest.approx(0.034) and state.object_detected is True
    gripper.set_closed(False)
    assert _eventually(lambda: robotiq.state["POS"] == 0)
    gripper.close()


def test_a_silent_robotiq_socket_is_a_stale_reading_not_a_blocked_loop(robotiq) -> None:
    gripper = RobotiqGripper("127.0.0.1", robotiq.server_address[1], timeout=30.0,
                             max_age=0.2)
    assert gripper.state().opening == 1.0
    robotiq.answering.clear()  # the URCap hangs: a blocking read would wait the 30 s timeout
    with pytest.raises(RobotFault, match=r"state is 0\.\d+ s old \(limit 0\.2 s\)"):
        assert _eventually(lambda: gripper.state() is None, timeout=10.0)
    gripper.set_closed(True)  # queued, never blocks on the socket
    robotiq.answering.set()
    gripper.close()


def test_a_robotiq_socket_error_is_reported_by_state(robotiq) -> None:
    gripper = RobotiqGripper("127.0.0.1", robotiq.server_address[1])
    robotiq.drop.set()
    with pytest.raises(RobotFault, match="Robotiq gripper socket closed"):
        assert _eventually(lambda: gripper.state() is None)
    gripper.close()


def test_robotiq_unreachable_names_the_fix() -> None:
    with pytest.raises(RobotFault, match="Robotiq URCap installed"):
        RobotiqGripper("127.0.0.1", 9, timeout=0.5)


class _IO:
    def __init__(self, accept: bool = True) -> None:
        self.accept, self.outputs = accept, {}

    def setStandardDigitalOut(self, pin: int, level: bool) -> bool:
        self.outputs[pin] = level
        return self.accept

    def disconnect(self) -> None:
        """Nothing to close."""


def test_digital_gripper_sets_the_output_and_reports_no_feedback() -> None:
    io = _IO()
    gripper = DigitalGripper(io, pin=3, close_level=False)
    gripper.set_closed(True)
    assert io.outputs == {3: False}
    state = gripper.state()
    assert state.opening == 0.0 and math.isnan(state.width) and state.object_detected is None
    with pytest.raises(RobotFault, match="refused"):
        DigitalGripper(_IO(accept=False), 0).set_closed(True)
    with pytest.raises(ValueError, match="gripper_pin=9"):
        DigitalGripper(io, 9)


class _Status:
    """A robot whose status getters return what the test sets (or raise)."""

    def __init__(self, **values) -> None:
        self.values = {"isConnected": True, "isEmergencyStopped": False,
                       "isProtectiveStopped": False, "getSafetyMode": 1,
                       "isProgramRunning": True, **values}

    def __getattr__(self, name: str):
        value = self.values[name]
        if isinstance(value, Exception):
            def fail():
                raise value
            return fail
        return lambda: value


@pytest.mark.parametrize("values, reason", [
    ({}, None),
    ({"getSafetyMode": 2}, None),
    ({"isConnected": False}, "lost connection"),
    ({"isEmergencyStopped": True}, "emergency stop"),
    ({"isProtectiveStopped": True}, "protective stop"),
    ({"getSafetyMode": 5}, "safety mode safeguard stop"),
    ({"isProgramRunning": False}, "control program is not running"),
    ({"getSafetyMode": RuntimeError("socket closed")}, "lost connection to the robot (socket"),
])
def test_fault_reason_polls_every_status(values: dict, reason: str | None) -> None:
    robot = _Status(**values)
    got = fault_reason(robot, robot)
    assert got == reason if reason is None else reason in got
