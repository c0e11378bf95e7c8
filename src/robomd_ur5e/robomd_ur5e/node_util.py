"""What every robomd_ur5e node does the same way: read-only parameters and its main loop."""

from __future__ import annotations

from collections.abc import Callable

import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.executors import (
    ExternalShutdownException,
    MultiThreadedExecutor,
    SingleThreadedExecutor,
)
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile

#: Late joiners (a console started after the prompt) still get the last message.
LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)


class ParameterError(ValueError):
    """A node parameter has a bad value; the message names it and the fix."""


def declare(node: Node, parameters: dict[str, tuple[object, str]]) -> dict[str, object]:
    """Declare ``parameters`` (name -> (default, description)) read-only; their values.

    :param node: the node.
    :param parameters: the node module's ``PARAMETERS``.
    """
    values = {}
    for name, (default, text) in parameters.items():
        node.declare_parameter(name, default,
                               ParameterDescriptor(description=text, read_only=True))
        values[name] = node.get_parameter(name).value
    return values


def spin_node(make: Callable[[], Node], name: str, threads: int = 4,
              fatal: tuple[type[Exception], ...] = (ValueError, FileNotFoundError),
              args: list[str] | None = None) -> None:
    """Init rclpy, build the node (a ``fatal`` error exits with code 2 and its message), spin it
    on a multi-threaded executor until Ctrl-C or shutdown, and clean up.

    :param make: builds the node.
    :param name: logger name for a fatal error.
    :param threads: executor threads.
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
    executor = (SingleThreadedExecutor() if threads == 1
                else MultiThreadedExecutor(num_threads=threads))
    executor.add_node(node)
    try:
        while rclpy.ok() and not getattr(node, "finished", False):
            executor.spin_once(timeout_sec=0.2)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
