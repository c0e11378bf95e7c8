"""Follow a running campaign's ``campaign/status`` from the process that started its graph, and
show it with a :class:`~robomd_diagnoser.progress.ProgressReporter` (the nodes stay thin)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import rclpy
from rclpy.executors import SingleThreadedExecutor

from robomd_diagnoser.progress import ProgressReporter
from robomd_msgs.msg import CampaignStatus


class StatusWatch:
    """Subscribes to ``<namespace>/campaign/status`` in a private rclpy context and feeds the
    reporter until :meth:`close`.

    The caller's environment must already name the graph's ROS domain (``ROS_DOMAIN_ID``).

    :param reporter: what shows the progress.
    :param namespace: the campaign's namespace.
    """

    def __init__(self, reporter: ProgressReporter, namespace: str = "/robomd") -> None:
        self.reporter = reporter
        self._context = rclpy.Context()
        rclpy.init(context=self._context)
        self._node = rclpy.create_node(f"campaign_progress_{os.getpid()}", context=self._context)
        self._node.create_subscription(CampaignStatus, f"{namespace.rstrip('/')}/campaign/status",
                                       self._on_status, 10)
        self._executor = SingleThreadedExecutor(context=self._context)
        self._executor.add_node(self._node)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True, name="campaign-progress")
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set() and self._context.ok():
            self._executor.spin_once(timeout_sec=0.2)

    def _on_status(self, msg: CampaignStatus) -> None:
        # aborted attempts are retried: the budget counts judged rollouts
        judged = int(msg.rollouts_done) - int(msg.aborted)
        self.reporter.update(judged, int(msg.failures), int(msg.aborted))

    def close(self) -> None:
        """Stop following, end the reporter's output, and shut the private context down."""
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.reporter.close()
        self._executor.shutdown()
        self._node.destroy_node()
        rclpy.try_shutdown(context=self._context)


@contextmanager
def campaign_progress(budget: int, name: str, enabled: bool = True) -> Iterator[None]:
    """Show a campaign's progress on stderr while the block runs (nothing if not ``enabled``).

    :param budget: the campaign's rollout budget.
    :param name: the campaign's name.
    :param enabled: False for ``--no-progress``.
    """
    watch = StatusWatch(ProgressReporter(budget, f"campaign {name}")) if enabled else None
    try:
        yield
    finally:
        if watch is not None:
            watch.close()
