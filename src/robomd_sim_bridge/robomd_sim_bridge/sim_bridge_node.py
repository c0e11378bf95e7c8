"""sim_bridge node: a simulated world behind the RoboMD ROS 2 contract.

Serves ``apply_perturbation``, ``reset_scene`` and ``judge_rollout`` (simulator ground truth), the
``execute_rollout`` action (per-step feedback, cancel that stops the rollout), and publishes
``camera/image_raw`` (sensor-data QoS) after every scene change and during rollouts.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import rclpy
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from robomd_diagnoser.catalog import CatalogError
from robomd_diagnoser.config import ROBOTS, ConfigError, WorldSettings
from robomd_diagnoser.jobs import write_video
from robomd_diagnoser.paths import find_config
from robomd_diagnoser.policy import Observation, PolicyError
from robomd_diagnoser.ros.image import to_msg
from robomd_diagnoser.ros.node import (
    Param,
    ParameterError,
    RolloutActionServer,
    RolloutReport,
    declare,
    spin_node,
)
from robomd_diagnoser.world import Outcome, RolloutStatus
from robomd_msgs.action import ExecuteRollout
from robomd_msgs.srv import ApplyPerturbation, JudgeRollout, ResetScene

#: Every parameter is read-only once the node runs; the world's are checked by
#: :meth:`WorldSettings.check`, the same rules as a campaign's.
PARAMETERS: dict[str, Param] = {
    "task": Param("lift", "robosuite task: lift, stack, pick_place_can, nut_assembly_square"),
    "catalog": Param("", "perturbation catalog YAML; empty = config/catalogs/<task>.yaml"),
    "policy": Param("bc", "policy under test: bc, expert, torchscript:<path>, "
                          "module:<pkg.mod:fn>"),
    "robot": Param("UR5e", "robosuite robot", choices=ROBOTS),
    "camera": Param("agentview", "scene camera name"),
    "camera_size": Param(84, "square camera resolution in pixels"),
    "horizon": Param(150, "environment step limit"),
    "frame_id": Param("scene_camera", "frame_id of published images"),
    "video_dir": Param("", "where rollout videos are written; empty = ~/.ros/robomd_videos"),
}

def world_settings(params: dict[str, object]) -> WorldSettings:
    """The world the parameter values describe, validated like a campaign's world.

    :raises ParameterError: naming the parameter, the bad value and what is accepted.
    """
    catalog = str(params["catalog"]) or ""
    if not catalog:
        try:
            catalog = str(find_config(f"catalogs/{params['task']}.yaml"))
        except FileNotFoundError as exc:
            raise ParameterError(f"parameter task={params['task']!r}: no catalog for it "
                                 f"({exc})") from None
    elif not Path(catalog).is_file():
        raise ParameterError(f"parameter catalog={catalog!r}: file does not exist")
    settings = WorldSettings(type="sim", catalog=catalog, policy=str(params["policy"]),
                             robot=params["robot"], camera=str(params["camera"]),
                             camera_size=params["camera_size"], horizon=params["horizon"])
    try:
        return settings.check(lambda f: f"parameter {f}={params.get(f)!r}")
    except ConfigError as exc:
        raise ParameterError(str(exc)) from None


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


class SimBridgeNode(RolloutActionServer):
    """The simulated world node. ``world`` may be injected (tests); else built from parameters.

    Every call into the world runs on the node's world thread (the renderer's OpenGL context is
    bound to the thread that created it).
    """

    fault_reason = "simulator fault"

    def __init__(self, world=None) -> None:
        super().__init__("sim_bridge", namespace="/robomd")
        values = declare(self, PARAMETERS)
        self.spec = world_settings(values)
        video_dir = str(values["video_dir"]) or str(Path.home() / ".ros" / "robomd_videos")
        self.video_dir = Path(video_dir)
        self.frame_id = str(values["frame_id"])
        self.start_world_thread("sim")
        if world is None:
            self.get_logger().info(f"building {self.spec}")
            world = self.on_world_thread(self.spec.build)
        self.world = world
        self.world.policy = _ImageTap(world.policy, self.publish_image)
        self.busy = threading.Lock()
        self._preempt = threading.Event()
        self._verdicts: dict[str, Outcome] = {}
        group = ReentrantCallbackGroup()
        self.image_pub = self.create_publisher(Image, "camera/image_raw", qos_profile_sensor_data)
        self.create_service(ApplyPerturbation, "apply_perturbation", self._apply,
                            callback_group=group)
        self.create_service(ResetScene, "reset_scene", self._reset, callback_group=group)
        self.create_service(JudgeRollout, "judge_rollout", self._judge, callback_group=group)
        self.serve_rollouts(group)
        self.get_logger().info(f"sim bridge ready: task {self.world.catalog.task}, "
                               f"{len(self.world.catalog)} perturbations, policy "
                               f"{self.spec.policy}")

    def publish_image(self, image: np.ndarray) -> None:
        """Publish an HxWx3 RGB frame on camera/image_raw (not while ROS shuts down)."""
        if not self.context.ok():
            return
        self.image_pub.publish(to_msg(image, self.frame_id, self.get_clock().now().to_msg()))

    def _busy(self) -> bool:
        """Take the world for a scene request; a rollout still running is one its client gave up
        on (one client drives a world), so it is stopped first. True if the world stayed busy."""
        if self.busy.acquire(blocking=False):
            return False
        self._preempt.set()
        taken = self.busy.acquire(timeout=30.0)
        self._preempt.clear()
        return not taken

    def _apply(self, req, res):
        if self._busy():
            res.status = ApplyPerturbation.Response.STATUS_REJECTED
            res.message = "the world is busy with a rollout that did not stop; retry"
            return res
        try:
            self.publish_image(
                self.on_world_thread(lambda: self._apply_and_observe(req.perturbations)))
            res.status = ApplyPerturbation.Response.STATUS_APPLIED
            res.message = "applied: " + (", ".join(req.perturbations) or "nominal scene")
        except CatalogError as exc:
            res.status = ApplyPerturbation.Response.STATUS_REJECTED
            res.message = str(exc)
        finally:
            self.busy.release()
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
            self.publish_image(self.on_world_thread(lambda: self._reset_and_observe(int(req.seed))))
            res.success, res.message = True, f"nominal scene, seed {req.seed}"
        finally:
            self.busy.release()
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

    def run_rollout(self, goal, handle) -> RolloutReport:
        start = time.monotonic()
        timed_out = [False]

        def on_step(step: int, elapsed: float) -> None:
            if rclpy.ok():  # not while the node shuts down
                handle.publish_feedback(ExecuteRollout.Feedback(step=step, elapsed=elapsed))

        def should_stop() -> bool:
            if goal.timeout_s > 0 and time.monotonic() - start > goal.timeout_s:
                timed_out[0] = True
            return (handle.is_cancel_requested or timed_out[0] or self._preempt.is_set()
                    or not rclpy.ok())

        self.world.record = bool(goal.record_video)
        try:
            rollout = self.on_world_thread(lambda: self.world.execute(
                int(goal.max_steps), int(goal.seed), on_step, should_stop))
            report = RolloutReport(rollout.status, rollout.steps, rollout.reason)
            if timed_out[0]:
                report.status = RolloutStatus.ABORTED
                report.reason = f"timeout after {goal.timeout_s:.1f} s"
            elif self._preempt.is_set():
                report.status = RolloutStatus.ABORTED
                report.reason = "preempted by a new scene request"
            if report.status == RolloutStatus.COMPLETED:
                self._verdicts = {goal.rollout_id: self.on_world_thread(self.world.judge)}
            if goal.record_video and self.world.last_frames:
                path = self.video_dir / f"{goal.rollout_id}.mp4"
                write_video(self.world.last_frames, path, getattr(self.world, "control_freq", 20))
                report.video_path = str(path)
        finally:
            self.world.record = False
        return report

    def destroy_node(self) -> None:
        self.on_world_thread(self.world.close)
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``sim_bridge_node`` executable."""
    spin_node(SimBridgeNode, "sim_bridge",
              fatal=(ParameterError, CatalogError, PolicyError, FileNotFoundError), args=args)


if __name__ == "__main__":
    main()
