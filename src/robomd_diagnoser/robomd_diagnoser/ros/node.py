"""What every RoboMD node does the same way: its parameter table, its main loop, latched topics,
and the ``execute_rollout`` action server that the sim bridge and the UR5e executor share.

A node module declares its parameters once, as a table of :class:`Param`::

    PARAMETERS = {
        "camera_size": Param(84, "square camera resolution in pixels", range=(16, 512)),
        "robot": Param("UR5e", "robosuite robot", choices=("UR5e", "Panda")),
    }

:func:`declare` declares them read-only (with their description and range, as ``ros2 param
describe`` shows them), reads the values and validates them, raising :class:`ParameterError`
that names the parameter and the fix. :func:`spin_node` is the body of every node's ``main()``.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from abc import abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import rclpy
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.executors import (
    ExternalShutdownException,
    MultiThreadedExecutor,
    SingleThreadedExecutor,
)
from rclpy.impl.implementation_singleton import rclpy_implementation
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile

from robomd_diagnoser.world import RolloutStatus
from robomd_msgs.action import ExecuteRollout

T = TypeVar("T")

#: Late joiners (a console started after the prompt, a report reader) still get the last message.
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
#: Where a world node writes rollout videos unless told otherwise (its ``video_dir`` parameter).
DEFAULT_VIDEO_DIR = Path.home() / ".ros" / "robomd_videos"
#: What a goal's ``rollout_id`` may be: it names files (``<video_dir>/<rollout_id>.mp4``), so no
#: path separators, no leading dot, at most 64 characters.
ROLLOUT_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")


def rollout_id_problem(rollout_id: str) -> str | None:
    """Why ``rollout_id`` is refused, or None when it is a safe file name."""
    if ROLLOUT_ID.fullmatch(rollout_id):
        return None
    return (f"rollout_id {rollout_id!r} is not a plain name: use 1-64 letters, digits, '_', '.' "
            "or '-', not starting with '.' (it names the rollout's video file)")


class ParameterError(ValueError):
    """A node parameter has a bad value; the message names it and the fix."""


@dataclass(frozen=True)
class Param:
    """One node parameter: its default (which also fixes its type), what it means, and its range.

    :param default: the default value; ints, floats, bools, strings and lists of them.
    :param description: one line, shown by ``ros2 param describe``.
    :param range: inclusive numeric bounds (numbers only).
    :param choices: the accepted values (strings only).
    """

    default: object
    description: str
    range: tuple[float, float] | None = None
    choices: tuple[str, ...] | None = None

    def descriptor(self) -> ParameterDescriptor:
        desc = ParameterDescriptor(description=self.description, read_only=True)
        if self.range is not None:
            lo, hi = self.range
            if isinstance(self.default, bool) or not isinstance(self.default, (int, float)):
                raise TypeError(f"a range needs a numeric default, got {self.default!r}")
            if isinstance(self.default, int):
                desc.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=1)]
            else:
                desc.floating_point_range = [FloatingPointRange(from_value=float(lo),
                                                                to_value=float(hi), step=0.0)]
        return desc

    def check(self, name: str, value: object) -> object:
        """``value`` if it is acceptable, else :class:`ParameterError` naming ``name``."""
        if self.range is not None:
            lo, hi = self.range
            if not lo <= value <= hi:
                raise ParameterError(f"parameter {name}={value!r}: use a value in "
                                     f"{lo}..{hi} ({self.description})")
        if self.choices is not None and value not in self.choices:
            raise ParameterError(f"parameter {name}={value!r}: use one of "
                                 f"{', '.join(self.choices)}")
        return value


def declare(node: Node, parameters: dict[str, Param]) -> dict[str, object]:
    """Declare ``parameters`` read-only on ``node``; their validated values by name.

    A value outside a declared range is refused by rclpy itself at start-up; this also checks
    choices and turns either into a :class:`ParameterError` naming the parameter.

    :param node: the node.
    :param parameters: the node module's ``PARAMETERS`` table.
    :raises ParameterError: for a value outside its range or choices.
    """
    values = {}
    for name, param in parameters.items():
        try:
            node.declare_parameter(name, param.default, param.descriptor())
        except (rclpy.exceptions.InvalidParameterValueException,
                rclpy.exceptions.InvalidParameterTypeException) as exc:
            raise ParameterError(f"parameter {name}: {exc} ({param.description})") from None
        values[name] = param.check(name, node.get_parameter(name).value)
    return values


def spin_node(make: Callable[[], Node], name: str, threads: int = 4,
              fatal: tuple[type[Exception], ...] = (ValueError, FileNotFoundError),
              args: list[str] | None = None) -> None:
    """The body of every node's ``main()``: init rclpy, build the node (a ``fatal`` error exits
    with code 2 and its message), spin it until Ctrl-C, shutdown or its work is finished, clean up.

    A node may define: ``finished`` (true when its work is done: spinning stops),
    ``on_finished(executor)`` (called then, e.g. to let last messages out), ``on_interrupt()``
    (called on Ctrl-C) and ``exit_code`` (the process exits with it when it is not None).

    :param make: builds the node.
    :param name: logger name for a fatal error.
    :param threads: executor threads (1: a single-threaded executor).
    :param fatal: exceptions at construction that are configuration errors.
    :param args: ROS arguments.
    """
    rclpy.init(args=args)
    try:
        node = make()
    except fatal as exc:
        rclpy.logging.get_logger(name).fatal(str(exc))
        rclpy.try_shutdown()
        raise SystemExit(2) from None
    except KeyboardInterrupt:  # Ctrl-C while the node was being built
        rclpy.try_shutdown()
        raise SystemExit(130) from None
    executor = (SingleThreadedExecutor() if threads == 1
                else MultiThreadedExecutor(num_threads=threads))
    executor.add_node(node)
    try:
        while rclpy.ok() and not getattr(node, "finished", False):
            executor.spin_once(timeout_sec=0.2)
        if hasattr(node, "on_finished") and rclpy.ok():
            node.on_finished(executor)
    except (KeyboardInterrupt, ExternalShutdownException):
        # A Ctrl-C reaches every process of the terminal and the launcher then interrupts its
        # nodes again: one interrupt is enough, a second must not break the clean-up.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if hasattr(node, "on_interrupt"):
            node.on_interrupt()
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    code = getattr(node, "exit_code", None)
    if code is not None:
        raise SystemExit(code)


#: Rollout status -> the ExecuteRollout result's status constant.
RESULT_STATUS = {
    RolloutStatus.COMPLETED: ExecuteRollout.Result.STATUS_COMPLETED,
    RolloutStatus.ABORTED: ExecuteRollout.Result.STATUS_ABORTED,
    RolloutStatus.CANCELLED: ExecuteRollout.Result.STATUS_CANCELLED,
    RolloutStatus.UNAVAILABLE: ExecuteRollout.Result.STATUS_UNAVAILABLE,
}


@dataclass
class RolloutReport:
    """How one served rollout ended, as a :class:`RolloutActionServer` subclass reports it.

    :param status: how it ended.
    :param steps: control steps executed.
    :param reason: why it ended that way.
    :param duration: seconds; the server measures it when None.
    :param video_path: the MP4 written for it, if any.
    """

    status: RolloutStatus
    steps: int = 0
    reason: str = ""
    duration: float | None = None
    video_path: str = ""


class RolloutActionServer(Node):
    """A node that serves the ``execute_rollout`` action: one rollout at a time.

    The base class checks the goal (``max_steps >= 1``), holds :attr:`busy` for the rollout
    (subclasses take it too for their other world requests), turns an exception in
    :meth:`run_rollout` into an aborted rollout (a fault of the world, never a policy failure),
    fills the result and finishes the goal handle. Subclasses implement :meth:`run_rollout` and
    call :meth:`serve_rollouts` once their world is ready.
    """

    _world_thread: ThreadPoolExecutor | None = None

    def start_world_thread(self, name: str) -> None:
        """Start the one thread every call into the world runs on (:meth:`on_world_thread`): a
        renderer's OpenGL context or a robot connection belongs to the thread that made it,
        while ROS callbacks run on the executor's threads."""
        self._world_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    def on_world_thread(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the world's thread and return its result (or raise its error)."""
        return self._world_thread.submit(fn).result()

    def destroy_node(self) -> None:
        """Stop the world's thread (subclasses release their world on it first)."""
        if self._world_thread is not None:
            self._world_thread.shutdown()
        super().destroy_node()

    #: The reason given when a goal arrives while :attr:`busy` is held.
    busy_reason = "another rollout is running"
    #: What an exception in :meth:`run_rollout` is called in the aborted result's reason.
    fault_reason = "world fault"

    def serve_rollouts(self, callback_group: object) -> None:
        """Create the ``execute_rollout`` action server (and :attr:`busy` if not made yet)."""
        if not hasattr(self, "busy"):
            self.busy = threading.Lock()
        self._rollout_server = ActionServer(
            self, ExecuteRollout, "execute_rollout", self._execute_goal,
            callback_group=callback_group, goal_callback=self._check_goal,
            cancel_callback=lambda _handle: CancelResponse.ACCEPT)

    @abstractmethod
    def run_rollout(self, goal: ExecuteRollout.Goal, handle: object) -> RolloutReport:
        """Run the rollout ``goal`` asks for while :attr:`busy` is held.

        :param goal: the goal (rollout id, max steps, timeout, seed, video).
        :param handle: the goal handle (``publish_feedback``, ``is_cancel_requested``).
        """

    def _check_goal(self, goal: ExecuteRollout.Goal) -> GoalResponse:
        problem = rollout_id_problem(goal.rollout_id)
        if problem is not None:
            self.get_logger().warning(f"rejecting a rollout goal: {problem}")
            return GoalResponse.REJECT
        if goal.max_steps < 1:
            self.get_logger().warning(f"rejecting rollout {goal.rollout_id}: max_steps must be "
                                      ">= 1")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _execute_goal(self, handle) -> ExecuteRollout.Result:
        goal = handle.request
        result = ExecuteRollout.Result()
        if not self.busy.acquire(blocking=False):
            handle.abort()
            result.status = ExecuteRollout.Result.STATUS_ABORTED
            result.reason = self.busy_reason
            return result
        start = time.monotonic()
        try:
            report = self.run_rollout(goal, handle)
        except Exception as exc:  # a fault of the world aborts this rollout, not the node
            self.get_logger().error(f"rollout {goal.rollout_id} failed: {exc}")
            report = RolloutReport(RolloutStatus.ABORTED, reason=f"{self.fault_reason}: {exc}")
        finally:
            self.busy.release()
        result.status = RESULT_STATUS[report.status]
        result.steps = int(report.steps)
        result.duration = float(time.monotonic() - start if report.duration is None
                                else report.duration)
        result.reason = report.reason
        result.video_path = report.video_path
        if not rclpy.ok():  # shutting down: the goal ends aborted, but no one can be told
            try:
                handle.abort()
            except rclpy_implementation.RCLError:  # raised by publishing the state, once set
                pass
            return result
        if report.status == RolloutStatus.CANCELLED and handle.is_cancel_requested:
            handle.canceled()
        elif report.status == RolloutStatus.COMPLETED:
            handle.succeed()
        else:
            handle.abort()
        return result
