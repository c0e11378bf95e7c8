"""diagnoser node: runs a campaign through a World that lives behind the ROS 2 contract.

The campaign engine is the same as ``robomd diagnose`` (:mod:`robomd_diagnoser.campaign`); only
the world differs (:class:`~robomd_diagnoser.ros.world.RosWorld`), so the node cannot tell a sim
bridge from a real robot. It publishes ``campaign/status`` while running, every finished rollout on
``campaign/rollouts``, the ranked ``campaign/report`` at the end, records all of it with camera
frames to an MCAP bag (a new part per run: ``bag/``, ``bag.1/``...), and serves
``campaign/pause``, ``campaign/resume`` and ``campaign/stop``.

It takes the campaign directory's lock before it touches anything there, and holds it until the
campaign thread has ended and the bag is closed. Ctrl-C abandons the rollout in flight (it is not
stored; a rerun runs it) and closes the bag, so a rerun of the same command resumes.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from rclpy.impl.implementation_singleton import rclpy_implementation
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from robomd_diagnoser.campaign import (
    STORE_FILE,
    CampaignError,
    CampaignResult,
    campaign_lock,
    run_campaign,
)
from robomd_diagnoser.catalog import load_catalog
from robomd_diagnoser.config import ConfigError, load_campaign
from robomd_diagnoser.diagnosis_env import KEY_PREFIX
from robomd_diagnoser.report import TRANSPORT_FILE, load_result, write_report
from robomd_diagnoser.ros.bag import (
    ROLLOUTS_TOPIC,
    CampaignBag,
    bag_parts,
    bagged_rollouts,
    next_bag_part,
)
from robomd_diagnoser.ros.convert import perturbation_to_msg, record_to_msg
from robomd_diagnoser.ros.node import DEFAULT_VIDEO_DIR, LATCHED, Param, declare, spin_node
from robomd_diagnoser.ros.world import RolloutInterrupted, RosWorldFactory
from robomd_diagnoser.store import RolloutStore
from robomd_diagnoser.world import RolloutStatus
from robomd_msgs.msg import CampaignStatus, FailureMode, FailureReport
from robomd_msgs.msg import RolloutRecord as RolloutRecordMsg

PARAMETERS: dict[str, Param] = {
    "campaign": Param("", "campaign YAML (required)"),
    "output": Param("", "campaign directory; empty = the campaign's output"),
    "worlds": Param(["/robomd"], "namespace of each world's contract, one per campaign worker"),
    "startup_timeout": Param(120.0, "seconds to wait for the world nodes to come up"),
    "service_timeout": Param(10.0, "seconds to wait for a world service or server"),
    "rollout_timeout": Param(300.0, "wall-clock limit of one rollout, seconds"),
    "image_timeout": Param(10.0, "seconds to wait for a camera frame after a scene change"),
    "status_period": Param(1.0, "seconds between campaign/status messages"),
    "bag": Param(True, "record the campaign to <output>/bag (MCAP; a rerun adds bag.1, ...)"),
    "bag_image_every": Param(10, "bag every n-th camera frame (0: none)"),
    "exit_when_done": Param(True, "shut the node down when the campaign has finished"),
    "video_dir": Param("", "the world nodes' video_dir; empty = ~/.ros/robomd_videos (a video "
                           "path outside it is not read)"),
}


class DiagnoserNode(Node):
    """Runs one campaign in a worker thread; the ROS side only reports and controls it."""

    def __init__(self) -> None:
        super().__init__("diagnoser", namespace="/robomd")
        p = declare(self, PARAMETERS)
        if not p["campaign"]:
            raise ConfigError("parameter campaign is required: the campaign YAML to run "
                              "(e.g. -p campaign:=config/campaigns/lift_bc.yaml)")
        self.config = load_campaign(p["campaign"])
        worlds = list(p["worlds"])
        if len(worlds) != self.config.workers:
            raise ConfigError(f"parameter worlds has {len(worlds)} namespaces but the campaign "
                              f"has workers: {self.config.workers}; give one world per worker")
        self.params = p
        self.out_dir = Path(p["output"] or self.config.output).resolve()
        self._dir_lock = campaign_lock(self.out_dir)  # before anything in it is touched
        self.catalog = load_catalog(self.config.catalog)
        self.factory = RosWorldFactory(str(self.config.catalog), worlds,
                                       startup_timeout=p["startup_timeout"],
                                       service_timeout=p["service_timeout"],
                                       rollout_timeout=p["rollout_timeout"],
                                       image_timeout=p["image_timeout"],
                                       video_dir=p["video_dir"] or str(DEFAULT_VIDEO_DIR))
        self.status_pub = self.create_publisher(CampaignStatus, "campaign/status", 10)
        self.report_pub = self.create_publisher(FailureReport, "campaign/report", LATCHED)
        self.rollout_pub = self.create_publisher(RolloutRecordMsg, "campaign/rollouts", 100)
        cameras = [f"{ns.rstrip('/')}/camera/image_raw" for ns in worlds]
        if p["bag_image_every"] <= 0:
            cameras = []
        earlier = bag_parts(self.out_dir)
        self.bag = CampaignBag(next_bag_part(self.out_dir), cameras) if p["bag"] else None
        self._frames = dict.fromkeys(cameras, 0)
        for topic in cameras if self.bag else []:
            self.create_subscription(Image, topic, lambda m, t=topic: self._on_image(t, m),
                                     qos_profile_sensor_data)
        self.create_service(Trigger, "campaign/pause", self._pause)
        self.create_service(Trigger, "campaign/resume", self._resume)
        self.create_service(Trigger, "campaign/stop", self._stop)
        self._running = threading.Event()
        self._running.set()
        self._stop_requested = False
        self.state = CampaignStatus.STATE_RUNNING
        self.message = "starting"
        self.result: CampaignResult | None = None
        self._store = RolloutStore(self.out_dir / STORE_FILE)
        self._seen: set[str] = set()
        self._bagged = bagged_rollouts(earlier) if self.bag else set()  # each rollout bagged once
        self._poll_lock = threading.Lock()
        self._counts = {"done": 0, "failures": 0, "aborted": 0}
        self._current: list[str] = []
        self.create_timer(float(p["status_period"]), self._publish_status)
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="campaign")
        self._thread.start()

    # --- campaign thread ------------------------------------------------------------------
    def _run(self) -> None:
        try:
            self.get_logger().info(f"campaign {self.config.name}: {self.config.budget} rollouts, "
                                   f"agent {self.config.agent.type}, worlds "
                                   f"{self.params['worlds']}, output {self.out_dir}")
            self.result = run_campaign(self.config, self.out_dir, progress=False,
                                       world_factory=self.factory, on_progress=self._on_progress,
                                       lock=self._dir_lock)
            self._poll_store()
            self._finish()
        except RolloutInterrupted:  # ROS is down: said on the last status, in the bag
            self.message = "interrupted; rerun the same command to resume"
        except Exception as exc:  # reported on campaign/status; the store keeps finished work
            if self._stop_requested:  # e.g. an operator abort: the world refuses more scenes
                self.state = CampaignStatus.STATE_DONE
                self.message = f"stopped on request ({exc})"
                self.get_logger().warning(self.message)
            else:
                self.state = CampaignStatus.STATE_FAULT
                self.message = f"campaign failed: {exc}"
                self.get_logger().error(self.message)
        finally:
            self._poll_store()  # the rollouts stored last are bagged, also after an interrupt
            self._publish_status()
            if self.bag:
                self.bag.close()
            self.done.set()

    def _on_progress(self, done: int, infos) -> bool:
        while not self._running.is_set() and not self._stop_requested:
            time.sleep(0.1)
        return not self._stop_requested

    def _served_by(self) -> list[str]:
        names = []
        for name, ns in self.get_node_names_and_namespaces():
            try:
                services = self.get_service_names_and_types_by_node(name, ns)
            except Exception:  # the node left the graph meanwhile
                continue
            if any(s.endswith("/apply_perturbation") or s.endswith("/execute_rollout/_action/"
                                                                   "send_goal")
                   for s, _t in services):
                names.append(f"{ns.rstrip('/')}/{name}")
        return sorted(set(names) | {self.get_fully_qualified_name()})

    def _finish(self) -> None:
        if self._stop_requested:
            self.state, self.message = CampaignStatus.STATE_DONE, "stopped on request"
            return
        served_by = self._served_by()
        transport = {"transport": "ROS 2 (rclpy over DDS)", "nodes": served_by,
                     "worlds": list(self.params["worlds"])}
        (self.out_dir / TRANSPORT_FILE).write_text(json.dumps(transport, indent=2))
        _json, html = write_report([load_result(self.out_dir)], self.out_dir)
        report = self._report_msg(served_by, str(html))
        self._publish(self.report_pub, report)
        if self.bag:
            self.bag.write("/robomd/campaign/report", report)
        self.state = CampaignStatus.STATE_DONE
        self.message = f"done: report at {html}"
        self.get_logger().info(self.message)

    def _report_msg(self, served_by: list[str], path: str) -> FailureReport:
        d = self.result.diagnosis
        modes = []
        for rank, row in enumerate(d.modes, start=1):
            modes.append(FailureMode(
                rank=rank, perturbation=perturbation_to_msg(self.catalog[row.name]),
                probability=float(row.p_fail),
                failure_rate=float(row.rate) if row.rate is not None else float("nan"),
                failure_rate_low=float(row.lo), failure_rate_high=float(row.hi),
                trials=int(row.trials), failures=int(row.failures)))
        msg = FailureReport(campaign_id=self.config.name, task=self.config.task,
                            policy=self.config.policy, agent=self.config.agent.type, modes=modes,
                            entropy=float(d.entropy), num_failure_modes=int(d.num_failure_modes),
                            failure_severity_index=float(d.fsi),
                            rollouts_completed=int(d.rollouts_completed),
                            rollouts_aborted=int(d.rollouts_aborted), served_by=served_by,
                            report_path=path)
        msg.header.stamp = self.get_clock().now().to_msg()
        return msg

    # --- ROS side ---------------------------------------------------------------------------
    def _on_image(self, topic: str, msg: Image) -> None:
        if self._frames[topic] % int(self.params["bag_image_every"]) == 0:
            self.bag.write(topic, msg)
        self._frames[topic] += 1

    def _publish(self, publisher, msg) -> None:
        """Publish unless ROS is shutting down (Ctrl-C); the bag still gets the message."""
        if not self.context.ok():
            return
        try:
            publisher.publish(msg)
        except rclpy_implementation.RCLError:
            if self.context.ok():
                raise

    def _poll_store(self) -> None:
        with self._poll_lock:  # the status timer and the campaign thread both poll
            for record in self._store.records(KEY_PREFIX):
                if record.key not in self._seen:
                    self._seen.add(record.key)
                    self._count(record)

    def _count(self, record) -> None:
        self._counts["done"] += 1
        if record.status != RolloutStatus.COMPLETED.value:
            self._counts["aborted"] += 1
            self.message = f"rollout {record.key} {record.status}: {record.reason}"
            self.get_logger().warning(self.message)
        elif record.success is False:
            self._counts["failures"] += 1
        self._current = list(record.perturbations)
        msg = record_to_msg(record, self.catalog, self.config.name,
                            self.get_clock().now().to_msg())
        self._publish(self.rollout_pub, msg)
        if self.bag and record.key not in self._bagged:  # an earlier run's bag may hold it
            self._bagged.add(record.key)
            self.bag.write(ROLLOUTS_TOPIC, msg)

    def _publish_status(self) -> None:
        if not self.done.is_set():
            self._poll_store()
        msg = CampaignStatus(campaign_id=self.config.name, state=self.state,
                             rollouts_done=self._counts["done"],
                             rollouts_budget=self.config.budget,
                             failures=self._counts["failures"], aborted=self._counts["aborted"],
                             current_perturbations=self._current, message=self.message)
        msg.header.stamp = self.get_clock().now().to_msg()
        self._publish(self.status_pub, msg)
        if self.bag and not self.done.is_set():
            self.bag.write("/robomd/campaign/status", msg)

    def _pause(self, _req, res):
        self._running.clear()
        self.state, self.message = CampaignStatus.STATE_PAUSED, "paused after the current rollout"
        res.success, res.message = True, self.message
        return res

    def _resume(self, _req, res):
        self._running.set()
        self.state, self.message = CampaignStatus.STATE_RUNNING, "resumed"
        res.success, res.message = True, self.message
        return res

    def _stop(self, _req, res):
        self._stop_requested = True
        self._running.set()
        self.state = CampaignStatus.STATE_STOPPING
        self.message = "stopping after the current rollout; rerun to resume"
        res.success, res.message = True, self.message
        return res

    @property
    def finished(self) -> bool:
        """The campaign has ended and the node is to exit with it."""
        return self.done.is_set() and bool(self.params["exit_when_done"])

    def on_finished(self, executor) -> None:
        """Let the last status and the report go out."""
        self._publish_status()
        executor.spin_once(timeout_sec=0.5)

    def on_interrupt(self) -> None:
        """Ctrl-C: ROS is shut down, so the rollout in flight is abandoned (not stored) and the
        campaign thread ends; :meth:`destroy_node` waits for it."""
        self._stop_requested = True
        self._running.set()

    def destroy_node(self) -> None:
        """End the campaign thread (the bag is closed by it), then free the directory."""
        self._stop_requested = True
        self._running.set()
        self._thread.join()
        with self._poll_lock:
            self._store.close()
        self._dir_lock.close()
        super().destroy_node()

    @property
    def exit_code(self) -> int:
        """0 when the campaign is done (also when stopped on request), else 1."""
        return 0 if self.state == CampaignStatus.STATE_DONE else 1


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``diagnoser_node`` executable."""
    spin_node(DiagnoserNode, "diagnoser", threads=2,
              fatal=(ConfigError, CampaignError, FileNotFoundError, ValueError), args=args)


if __name__ == "__main__":
    main()
