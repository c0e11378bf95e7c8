"""A World whose scene lives behind the ROS 2 interface contract (sim bridge or real robot).

The diagnoser talks only to ``apply_perturbation``, ``reset_scene``, ``execute_rollout``,
``judge_rollout`` and ``camera/image_raw``, so a simulated and a real world are interchangeable.
The node must be spun by an executor in another thread while these methods block.

Requests go out from the campaign's thread while the executor's thread takes the answers. rclpy's
``ActionClient`` registers a request only after sending it (ros2/rclpy#1123), so an answer taken
in between was dropped ("Ignoring unexpected goal response") and the rollout aborted 30 s later:
:class:`GuardedActionClient` makes the answers wait until the request is registered.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from action_msgs.msg import GoalStatus
from rclpy.action import ActionClient
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from robomd_diagnoser.catalog import Catalog, CatalogError
from robomd_diagnoser.ros.image import from_msg
from robomd_diagnoser.ros.node import DEFAULT_VIDEO_DIR
from robomd_diagnoser.world import (
    Outcome,
    PerturbationUnavailable,
    RolloutResult,
    RolloutStatus,
    StepCallback,
    WorldError,
)
from robomd_msgs.action import ExecuteRollout
from robomd_msgs.srv import ApplyPerturbation, JudgeRollout, ResetScene

_STATUS = {
    ExecuteRollout.Result.STATUS_COMPLETED: RolloutStatus.COMPLETED,
    ExecuteRollout.Result.STATUS_ABORTED: RolloutStatus.ABORTED,
    ExecuteRollout.Result.STATUS_CANCELLED: RolloutStatus.CANCELLED,
    ExecuteRollout.Result.STATUS_UNAVAILABLE: RolloutStatus.UNAVAILABLE,
}

_TERMINAL = (GoalStatus.STATUS_SUCCEEDED, GoalStatus.STATUS_ABORTED, GoalStatus.STATUS_CANCELED)


log = logging.getLogger(__name__)


class RolloutInterrupted(RuntimeError):
    """ROS shut down in this process (Ctrl-C) while a world request was in flight. Not a
    :class:`WorldError`: the rollout is not stored, and a rerun of the campaign runs it."""


class GuardedActionClient(ActionClient):
    """An ``ActionClient`` whose answers wait until the request they answer is registered.

    Hold :attr:`requesting` around every request sent from a thread other than the executor's
    (``send_goal_async``, ``get_result_async``, ``cancel_goal_async``): rclpy sends a request and
    only then records its sequence number, and :meth:`execute` (the executor's thread, with the
    answer already taken) waits for the lock, so it always finds the request registered.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.requesting = threading.Lock()

    async def execute(self, taken_data) -> None:
        with self.requesting:
            pass  # a request being sent from another thread is registered by now
        await super().execute(taken_data)


def _check_alive(node: Node) -> None:
    if not node.context.ok():
        raise RolloutInterrupted("ROS was shut down (interrupted); rerun to resume")


def _wait(node: Node, future, timeout: float, what: str):
    done = threading.Event()
    future.add_done_callback(lambda _f: done.set())
    deadline = time.monotonic() + timeout
    while not done.wait(min(0.1, max(0.0, deadline - time.monotonic()))):
        _check_alive(node)
        if time.monotonic() >= deadline:
            future.cancel()
            raise WorldError(f"{what}: no answer within {timeout:.1f} s (is the node running?)")
    return future.result()


class RosWorld:
    """World protocol over ROS 2 service and action clients.

    :param node: a node spun by an executor in another thread.
    :param catalog: the catalog the serving side also loads (names must agree).
    :param namespace: where the contract lives (``/robomd``).
    :param service_timeout: seconds to wait for a service answer or a server to appear.
    :param rollout_timeout: wall-clock limit per rollout; exceeded -> cancelled and ABORTED.
    :param image_timeout: seconds to wait for a fresh camera frame in :meth:`observe`.
    :param video_dir: where the world node writes rollout videos; a ``video_path`` it returns
        outside this directory is ignored (never read).
    """

    def __init__(self, node: Node, catalog: Catalog, *, namespace: str = "/robomd",
                 service_timeout: float = 10.0, rollout_timeout: float = 120.0,
                 image_timeout: float = 10.0, video_dir: str | Path = DEFAULT_VIDEO_DIR) -> None:
        self.catalog = catalog
        self.node = node
        self.service_timeout = service_timeout
        self.rollout_timeout = rollout_timeout
        self.image_timeout = image_timeout
        self.video_dir = Path(video_dir).expanduser().resolve()
        ns = namespace.rstrip("/")
        group = ReentrantCallbackGroup()
        self._apply = node.create_client(ApplyPerturbation, f"{ns}/apply_perturbation",
                                         callback_group=group)
        self._reset = node.create_client(ResetScene, f"{ns}/reset_scene", callback_group=group)
        self._judge = node.create_client(JudgeRollout, f"{ns}/judge_rollout",
                                         callback_group=group)
        self._execute = GuardedActionClient(node, ExecuteRollout, f"{ns}/execute_rollout",
                                     callback_group=group)
        self._feedback_topic = f"{ns}/execute_rollout/_action/feedback"
        self._frame_lock = threading.Condition()
        self._frame: Image | None = None
        self._frame_time = 0.0
        self._scene_changed = 0.0
        node.create_subscription(Image, f"{ns}/camera/image_raw", self._on_image,
                                 qos_profile_sensor_data, callback_group=group)
        self._rollout_id = ""
        self._owned_executor = None
        self.record = False  # ask the world node to keep a video of the next rollouts
        self._video_path = ""

    def own(self, executor) -> None:
        """Take ownership of ``node`` and the executor spinning it (shut down in :meth:`close`)."""
        self._owned_executor = executor

    def wait_until_ready(self, timeout: float) -> None:
        """Block until every service and the action server of the contract are up.

        :raises WorldError: naming what is still missing after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        waiting = {c.srv_name: c.service_is_ready for c in (self._apply, self._reset, self._judge)}
        waiting["execute_rollout"] = self._execute.server_is_ready
        while True:
            missing = [name for name, ready in waiting.items() if not ready()]
            if not missing:
                return
            _check_alive(self.node)
            if time.monotonic() > deadline:
                raise WorldError(f"world not ready after {timeout:.0f} s: {', '.join(missing)} "
                                 "not available (is the world node running?)")
            time.sleep(0.1)

    def _on_image(self, msg: Image) -> None:
        with self._frame_lock:
            self._frame, self._frame_time = msg, time.monotonic()
            self._frame_lock.notify_all()

    def _call(self, client, request, what: str):
        available = client.wait_for_service(timeout_sec=self.service_timeout)
        _check_alive(self.node)
        if not available:
            raise WorldError(f"{what}: service {client.srv_name} not available after "
                             f"{self.service_timeout:.0f} s (is the world node running?)")
        return _wait(self.node, client.call_async(request), self.service_timeout, what)

    def reset(self, seed: int) -> None:
        """Return the scene to nominal with ``seed``."""
        self._scene_changed = time.monotonic()
        res = self._call(self._reset, ResetScene.Request(seed=int(seed)), "reset_scene")
        if not res.success:
            raise WorldError(f"reset_scene failed: {res.message}")

    def apply(self, perturbations: Sequence[str]) -> None:
        """Set the scene's cumulative perturbations (validated against the catalog first)."""
        for name in perturbations:
            self.catalog[name]  # raises CatalogError naming an unknown perturbation
        self._scene_changed = time.monotonic()
        res = self._call(self._apply, ApplyPerturbation.Request(perturbations=list(perturbations)),
                         "apply_perturbation")
        if res.status == ApplyPerturbation.Response.STATUS_UNAVAILABLE:
            raise PerturbationUnavailable(res.message or f"unavailable: {list(perturbations)}")
        if res.status == ApplyPerturbation.Response.STATUS_REJECTED:
            raise CatalogError(f"apply_perturbation rejected {list(perturbations)}: "
                               f"{res.message}")
        if res.status != ApplyPerturbation.Response.STATUS_APPLIED:
            raise WorldError(f"apply_perturbation: status {res.status}: {res.message}")

    def observe(self) -> np.ndarray:
        """The first camera frame received after the last scene change."""
        deadline = time.monotonic() + self.image_timeout
        with self._frame_lock:
            while self._frame is None or self._frame_time < self._scene_changed:
                _check_alive(self.node)
                left = min(0.1, deadline - time.monotonic())
                if left <= 0:
                    raise WorldError(f"no camera frame on camera/image_raw within "
                                     f"{self.image_timeout:.0f} s of the scene change")
                self._frame_lock.wait(left)
            return from_msg(self._frame)

    def execute(self, max_steps: int, seed: int, on_step: StepCallback | None = None,
                should_stop: Callable[[], bool] | None = None) -> RolloutResult:
        """Run one rollout through the ``execute_rollout`` action; faults come back ABORTED."""
        start = time.monotonic()
        self._rollout_id = uuid.uuid4().hex[:12]
        available = self._execute.wait_for_server(timeout_sec=self.service_timeout)
        _check_alive(self.node)
        if not available:
            return RolloutResult(RolloutStatus.ABORTED, 0, 0.0,
                                 "execute_rollout server not available")
        self._video_path = ""
        goal = ExecuteRollout.Goal(rollout_id=self._rollout_id, max_steps=int(max_steps),
                                   timeout_s=float(self.rollout_timeout), seed=int(seed),
                                   record_video=bool(self.record))
        last_step = [0]

        def feedback(msg) -> None:
            last_step[0] = msg.feedback.step
            if on_step is not None:
                on_step(msg.feedback.step, msg.feedback.elapsed)

        with self._execute.requesting:
            sent = self._execute.send_goal_async(goal, feedback_callback=feedback)
        try:  # acceptance can be slow on a loaded machine; a goal given up on is preempted
            handle = _wait(self.node, sent, max(self.service_timeout, 30.0),
                           "execute_rollout goal")
        except WorldError as exc:
            return RolloutResult(RolloutStatus.ABORTED, 0, time.monotonic() - start, str(exc))
        if handle is None or not handle.accepted:
            return RolloutResult(RolloutStatus.ABORTED, 0, time.monotonic() - start,
                                 "execute_rollout goal rejected")
        with self._execute.requesting:
            result_future = handle.get_result_async()
        done = threading.Event()
        result_future.add_done_callback(lambda _f: done.set())
        reason = ""
        server = self._server_endpoints()  # who accepted the goal
        checked = start
        while not done.wait(0.1):
            _check_alive(self.node)
            now = time.monotonic()
            if should_stop is not None and should_stop():
                reason = "cancelled by the diagnoser"
            elif now - start > self.rollout_timeout:
                reason = f"rollout exceeded {self.rollout_timeout:.0f} s"
            elif now - checked >= 1.0:
                checked = now
                current = self._server_endpoints()
                if not server:
                    server = current
                elif not server & current:
                    reason = ("execute_rollout server disappeared mid-rollout"
                              + (" (a new one has started)" if current else ""))
            if reason:
                with self._execute.requesting:
                    handle.cancel_goal_async()
                done.wait(2.0)
                status = (RolloutStatus.CANCELLED if reason.startswith("cancelled")
                          else RolloutStatus.ABORTED)
                return RolloutResult(status, last_step[0], time.monotonic() - start, reason)
        wrapped = result_future.result()
        if wrapped is None:
            return RolloutResult(RolloutStatus.ABORTED, last_step[0], time.monotonic() - start,
                                 "execute_rollout returned no result")
        if wrapped.status not in _TERMINAL:  # e.g. UNKNOWN: answered by a server that restarted
            return RolloutResult(RolloutStatus.ABORTED, last_step[0], time.monotonic() - start,
                                 "execute_rollout server does not know the goal (restarted?)")
        res = wrapped.result
        self._video_path = self._checked_video_path(res.video_path)
        status = _STATUS.get(res.status, RolloutStatus.ABORTED)
        if wrapped.status != GoalStatus.STATUS_SUCCEEDED and status == RolloutStatus.COMPLETED:
            status = RolloutStatus.ABORTED
        return RolloutResult(status, int(res.steps), float(res.duration), res.reason)

    def _server_endpoints(self) -> set[bytes]:
        """Identities of the action server's endpoints now in the graph. A restarted server has
        new ones, so a goal in flight on a server that died is noticed even when a successor is
        already up (a killed server stays in the graph until its DDS lease expires)."""
        return {bytes(info.endpoint_gid)
                for info in self.node.get_publishers_info_by_topic(self._feedback_topic)}

    def _checked_video_path(self, path: str) -> str:
        """``path`` if it names an MP4 inside :attr:`video_dir`, else "" (with a warning): a world
        node's answer never makes the diagnoser read an arbitrary file."""
        if not path:
            return ""
        resolved = Path(path).expanduser().resolve()
        if resolved.suffix != ".mp4" or not resolved.is_relative_to(self.video_dir):
            log.warning("ignoring video_path %r of rollout %s: not an .mp4 inside the video "
                        "directory %s", path, self._rollout_id, self.video_dir)
            return ""
        return str(resolved)

    @property
    def last_frames(self) -> list[np.ndarray]:
        """Frames of the last rollout's video, read from the file the world node wrote (empty
        when it wrote none, or wrote it where this machine cannot read it)."""
        if not self._video_path or not Path(self._video_path).is_file():
            return []
        import imageio.v2 as imageio

        return list(imageio.mimread(self._video_path, memtest=False))

    def judge(self) -> Outcome:
        """Ask ``judge_rollout`` for the verdict on the last executed rollout."""
        res = self._call(self._judge, JudgeRollout.Request(rollout_id=self._rollout_id),
                         "judge_rollout")
        if not res.judged:
            raise WorldError(f"judge_rollout could not judge {self._rollout_id}: "
                             f"{res.outcome.reason}")
        return Outcome(bool(res.outcome.success), float(res.outcome.confidence),
                       res.outcome.reason)

    def close(self) -> None:
        """Destroy the clients; also the node and its executor when the world owns them."""
        self._execute.destroy()
        for client in (self._apply, self._reset, self._judge):
            self.node.destroy_client(client)
        if self._owned_executor is not None:
            self._owned_executor.shutdown(timeout_sec=2.0)
            self.node.destroy_node()


def _spin(executor) -> None:
    """Spin until the executor is shut down or ROS is (Ctrl-C ends the thread quietly)."""
    try:
        executor.spin()
    except ExternalShutdownException:
        pass


class RosWorldFactory:
    """Picklable recipe for a :class:`RosWorld`, one per campaign environment.

    Called in the process that steps the environment (the diagnoser itself, or a worker process):
    it initialises rclpy there if needed and spins a private node in a daemon thread.

    :param catalog: path of the catalog YAML.
    :param namespaces: the world contract's namespace for each environment index.
    :param startup_timeout: seconds to wait for a world's node to come up.
    :param timeouts: keyword arguments of :class:`RosWorld` (service/rollout/image timeouts,
        video directory).
    """

    def __init__(self, catalog: str, namespaces: Sequence[str], startup_timeout: float = 120.0,
                 **timeouts: float | str) -> None:
        self.catalog = catalog
        self.namespaces = list(namespaces)
        self.startup_timeout = startup_timeout
        self.timeouts = timeouts

    def __call__(self, index: int) -> RosWorld:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        from robomd_diagnoser.catalog import load_catalog

        if not rclpy.ok():
            rclpy.init()
        node = rclpy.create_node(f"diagnoser_world{index}", namespace="/robomd")
        # Every callback here is short. Under rclpy's MultiThreadedExecutor, camera frames
        # arriving with a service answer delayed it by up to 3 s (see docs/ros.md).
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        threading.Thread(target=_spin, args=(executor,), daemon=True,
                         name=f"ros-world{index}").start()
        world = RosWorld(node, load_catalog(self.catalog), namespace=self.namespaces[index],
                         **self.timeouts)
        world.own(executor)
        world.wait_until_ready(self.startup_timeout)
        return world
