"""sim_bridge node: a simulated world behind the RoboMD ROS 2 contract.

Serves ``apply_perturbation``, ``reset_scene`` and ``judge_rollout`` (simulator ground truth), the
``execute_rollout`` action (per-step feedback, cancel that stops the rollout), and publishes
``camera/image_raw`` (sensor-data QoS) after every scene change and during rollouts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np
import rclpy
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from robomd_diagnoser.catalog import CatalogError
from robomd_diagnoser.executor import WorldSpec, write_video
from robomd_diagnoser.paths import find_config
from robomd_diagnoser.policy import Observation
from robomd_diagnoser.ros.image import to_msg
from robomd_diagnoser.world import Outcome, RolloutStatus
from robomd_msgs.action import ExecuteRollout
from robomd_msgs.srv import ApplyPerturbation, JudgeRollout, ResetScene

_RESULT_STATUS = {
    RolloutStatus.COMPLETED: ExecuteRollout.Result.STATUS_COMPLETED,
    RolloutStatus.ABORTED: ExecuteRollout.Result.STATUS_ABORTED,
    RolloutStatus.CANCELLED: ExecuteRollout.Result.STATUS_CANCELLED,
    RolloutStatus.UNAVAILABLE: ExecuteRollout.Result.STATUS_UNAVAILABLE,
}

#: name -> (default, description); every parameter is read-only once the node runs.
PARAMETERS: dict[str, tuple[object, str]] = {
    "task": ("lift", "robosuite task: lift, stack, pick_place_can, nut_assembly_square"),
    "catalog": ("", "perturbation catalog YAML; empty = config/catalogs/<task>.yaml"),
    "policy": ("bc", "policy under test: bc, expert, torchscript:<path>, module:<pkg.mod:fn>"),
    "robot": ("UR5e", "robosuite robot: UR5e or Panda"),
    "camera": ("agentview", "scene camera name"),
    "camera_size": (84, "square camera resolution in pixels (16..512)"),
    "horizon": (150, "environment step limit (>= 1)"),
    "frame_id": ("scene_camera", "frame_id of published images"),
    "video_dir": ("", "where rollout videos are written; empty = ~/.ros/robomd_videos"),
}


T = TypeVar("T")


class ParameterError(ValueError):
    """A node parameter has a bad value; the message names it and the fix."""


def validate(params: dict[str, object]) -> WorldSpec:
    """Check the parameter values and turn them into a :class:`WorldSpec`.

    :raises ParameterError: naming the parameter, the bad value and what is accepted.
    """
    size = params["camera_size"]
    if not isinstance(size, int) or not 16 <= size <= 512:
        raise ParameterError(f"parameter camera_size={size!r}: use an integer in 16..512")
    horizon = params["horizon"]
    if not isinstance(horizon, int) or horizon < 1:
        raise ParameterError(f"parameter horizon={horizon!r}: use a positive integer")
    if params["robot"] not in ("UR5e", "Panda"):
        raise ParameterError(f"parameter robot={params['robot']!r}: use UR5e or Panda")
    catalog = str(params["catalog"]) or ""
    if not catalog:
        try:
            catalog = str(find_config(f"catalogs/{params['task']}.yaml"))
        except FileNotFoundError as exc:
            raise ParameterError(f"parameter task={params['task']!r}: no catalog for it "
                                 f"({exc})") from None
    elif not Path(catalog).is_file():
        raise ParameterError(f"parameter catalog={catalog!r}: file does not exist")
    return WorldSpec(catalog=catalog, policy=str(params["policy"]), robot=str(params["robot"]),
                     camera_size=size, horizon=horizon, camera=str(params["camera"]))


class _ImageTap:
    """Wraps the policy under test to publish each camera frame it is given."""

    def __init__(self, inner, publish) -> None:
        self.inner = inner
        self.publish = publish
        self.uses_image = getattr(inner, "uses_image", True)

    def reset(self) -> None:
        self.inner.reset()

    def act(self, obs: Observation) -> np.ndarray:
        if "image" in obs:
            self.publish(obs["image"])
        return self.inner.act(obs)


class SimBridgeNode(Node):
    """The simulated world node. ``world`` may be injected (tests); else built from parameters.

    Every call into the world runs on one dedicated thread: the renderer's OpenGL context is
    bound to the thread that created it, while ROS callbacks run on the executor's threads.
    """

    def __init__(self, world=None) -> None:
        super().__init__("sim_bridge", namespace="/robomd")
        values = {}
        for name, (default, text) in PARAMETERS.items():
            self.declare_parameter(name, default,
                                   ParameterDescriptor(description=text, read_only=True))
            values[name] = self.get_parameter(name).value
        self.spec = validate(values)
        video_dir = str(values["video_dir"]) or str(Path.home() / ".ros" / "robomd_videos")
        self.video_dir = Path(video_dir)
        self.frame_id = str(values["frame_id"])
        self._sim = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sim")
        if world is None:
            self.get_logger().info(f"building {self.spec}")
            world = self._on_sim(self.spec.build)
        self.world = world
        self.world.policy = _ImageTap(world.policy, self.publish_image)
        self._lock = threading.Lock()
        self._preempt = threading.Event()
        self._verdicts: dict[str, Outcome] = {}
        group = ReentrantCallbackGroup()
        self.image_pub = self.create_publisher(Image, "camera/image_raw", qos_profile_sensor_data)
        self.create_service(ApplyPerturbation, "apply_perturbation", self._apply,
                            callback_group=group)
        self.create_service(ResetScene, "reset_scene", self._reset, callback_group=group)
        self.create_service(JudgeRollout, "judge_rollout", self._judge, callback_group=group)
        self._action = ActionServer(self, ExecuteRollout, "execute_rollout", self._execute,
                                    callback_group=group, goal_callback=self._on_goal,
                                    cancel_callback=lambda _h: CancelResponse.ACCEPT)
        self.get_logger().info(f"sim bridge ready: task {self.world.catalog.task}, "
                               f"{len(self.world.catalog)} perturbations, policy "
                               f"{self.spec.policy}")

    def _on_sim(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the simulator thread and return its result (or raise its error)."""
        return self._sim.submit(fn).result()

    def publish_image(self, image: np.ndarray) -> None:
        """Publish an HxWx3 RGB frame on camera/image_raw."""
        self.image_pub.publish(to_msg(image, self.frame_id, self.get_clock().now().to_msg()))

    def _busy(self) -> bool:
        """Take the world for a scene request; a rollout still running is one its client gave up
        on (one client drives a world), so it is stopped first. True if the world stayed busy."""
        if self._lock.acquire(blocking=False):
            return False
        self._preempt.set()
        taken = self._lock.acquire(timeout=30.0)
        self._preempt.clear()
        return not taken

    def _apply(self, req, res):
        if self._busy():
            res.status = ApplyPerturbation.Response.STATUS_REJECTED
            res.message = "the world is busy with a rollout that did not stop; retry"
            return res
        try:
            self.publish_image(self._on_sim(lambda: self._apply_and_observe(req.perturbations)))
            res.status = ApplyPerturbation.Response.STATUS_APPLIED
            res.message = "applied: " + (", ".join(req.perturbations) or "nominal scene")
        except CatalogError as exc:
            res.status = ApplyPerturbation.Response.STATUS_REJECTED
            res.message = str(exc)
        finally:
            self._lock.release()
        return res

    def _apply_and_observe(self, names) -> np.ndarray:
        self.world.apply(list(names))
        return self.world.observe()

    def _reset_and_observe(self, seed: int) -> np.ndarray:
        self.world.reset(seed)
        return self.world.observe()

    def _reset(self, req, res):
        if self._busy():
            res.success, res.message = False, "the world is busy with a rollout that did not stop"
            return res
        try:
            self.publish_image(self._on_sim(lambda: self._reset_and_observe(int(req.seed))))
            res.success, res.message = True, f"nominal scene, seed {req.seed}"
        finally:
            self._lock.release()
        return res

    def _judge(self, req, res):
        verdict = self._verdicts.get(req.rollout_id)
        res.outcome.rollout_id = req.rollout_id
        res.outcome.judge = "simulator"
        res.outcome.header.stamp = self.get_clock().now().to_msg()
        if verdict is None:
            res.judged = False
            res.outcome.reason = f"no completed rollout with id {req.rollout_id!r}"
        else:
            res.judged = True
            res.outcome.success = verdict.success
            res.outcome.confidence = float(verdict.confidence)
            res.outcome.reason = verdict.reason
        return res

    def _on_goal(self, goal) -> GoalResponse:
        if goal.max_steps < 1:
            self.get_logger().warning(
                f"rejecting rollout {goal.rollout_id}: max_steps must be >= 1")
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _execute(self, handle) -> ExecuteRollout.Result:
        goal = handle.request
        result = ExecuteRollout.Result()
        if not self._lock.acquire(blocking=False):
            handle.abort()
            result.status = ExecuteRollout.Result.STATUS_ABORTED
            result.reason = "another rollout is running"
            return result
        start = time.monotonic()
        timed_out = [False]
        rollout = None

        def on_step(step: int, elapsed: float) -> None:
            if rclpy.ok():  # not while the node shuts down
                handle.publish_feedback(ExecuteRollout.Feedback(step=step, elapsed=elapsed))

        def should_stop() -> bool:
            if goal.timeout_s > 0 and time.monotonic() - start > goal.timeout_s:
                timed_out[0] = True
            return (handle.is_cancel_requested or timed_out[0] or self._preempt.is_set()
                    or not rclpy.ok())

        try:
            self.world.record = bool(goal.record_video)
            rollout = self._on_sim(lambda: self.world.execute(int(goal.max_steps), int(goal.seed),
                                                              on_step, should_stop))
            status = rollout.status
            reason = rollout.reason
            if timed_out[0]:
                status, reason = RolloutStatus.ABORTED, f"timeout after {goal.timeout_s:.1f} s"
            elif self._preempt.is_set():
                status, reason = RolloutStatus.ABORTED, "preempted by a new scene request"
            if status == RolloutStatus.COMPLETED:
                self._verdicts = {goal.rollout_id: self._on_sim(self.world.judge)}
            if goal.record_video and self.world.last_frames:
                path = self.video_dir / f"{goal.rollout_id}.mp4"
                write_video(self.world.last_frames, path, getattr(self.world, "control_freq", 20))
                result.video_path = str(path)
        except Exception as exc:  # a fault in the simulator aborts this rollout, not the node
            self.get_logger().error(f"rollout {goal.rollout_id} failed: {exc}")
            status, reason = RolloutStatus.ABORTED, f"simulator fault: {exc}"
        finally:
            self.world.record = False
            self._lock.release()
        result.status = _RESULT_STATUS[status]
        result.steps = rollout.steps if rollout else 0
        result.duration = time.monotonic() - start
        result.reason = reason
        if not rclpy.ok():
            return result  # shutting down: the goal's state can no longer be published
        if status == RolloutStatus.CANCELLED and handle.is_cancel_requested:
            handle.canceled()
        elif status == RolloutStatus.COMPLETED:
            handle.succeed()
        else:
            handle.abort()
        return result

    def destroy_node(self) -> None:
        self._on_sim(self.world.close)
        self._sim.shutdown()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``sim_bridge_node`` executable."""
    rclpy.init(args=args)
    try:
        node = SimBridgeNode()
    except (ParameterError, CatalogError, FileNotFoundError) as exc:
        rclpy.logging.get_logger("sim_bridge").fatal(str(exc))
        rclpy.try_shutdown()
        raise SystemExit(2) from None
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
