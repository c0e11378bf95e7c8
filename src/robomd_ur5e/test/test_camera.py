"""The camera: video files (loop / end), a lost device that comes back, and the node over ROS."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from robomd_ur5e.camera import CameraEvent, FrameGrabber, parse_source

FRAMES = 20


@pytest.fixture
def video(tmp_path: Path) -> Path:
    """A 64x48 video whose frame i is a uniform grey of 10 * i (written with cv2)."""
    path = tmp_path / "scene.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(FRAMES):
        writer.write(np.full((48, 64, 3), 10 * i, np.uint8))
    writer.release()
    return path


def test_sources_are_parsed() -> None:
    assert parse_source("0") == 0 and parse_source(" 2 ") == 2
    assert parse_source("rtsp://cam/stream") == "rtsp://cam/stream"
    with pytest.raises(ValueError, match="source is empty"):
        parse_source("")


def test_video_file_loops(video: Path) -> None:
    events = []
    grabber = FrameGrabber(str(video), 32, 24, loop=True, on_event=lambda e, _d: events.append(e))
    frames = [grabber.read() for _ in range(FRAMES + 3)]
    assert all(f is not None and f.shape == (24, 32, 3) and f.dtype == np.uint8 for f in frames)
    assert CameraEvent.LOOPED in events and not grabber.ended
    assert frames[FRAMES][0, 0, 0] < frames[FRAMES - 1][0, 0, 0], "back to the first frame"


def test_video_file_ends_without_loop(video: Path) -> None:
    grabber = FrameGrabber(str(video), loop=False)
    frames = [grabber.read() for _ in range(FRAMES + 2)]
    assert all(f is not None for f in frames[:FRAMES]) and frames[FRAMES] is None
    assert grabber.ended and frames[0].shape == (48, 64, 3)


class _FlakyDevice:
    """Capture devices that fail to open ``down`` times, then deliver ``frames`` frames each."""

    def __init__(self, down: int, frames: int) -> None:
        self.down, self.frames, self.opens = down, frames, 0

    def __call__(self, source):
        self.opens += 1
        device = self

        class Cap:
            left = device.frames

            def isOpened(self) -> bool:
                return device.opens > device.down

            def set(self, *_args) -> bool:
                return True

            def read(self):
                if self.left <= 0:
                    return False, None
                self.left -= 1
                return True, np.zeros((48, 64, 3), np.uint8)

            def release(self) -> None:
                """Nothing held."""

        return Cap()


def test_lost_device_is_retried_with_backoff_and_recovers() -> None:
    now = [0.0]
    events: list[tuple[CameraEvent, str]] = []
    device = _FlakyDevice(down=0, frames=2)
    grabber = FrameGrabber("0", loop=True, backoff_min=0.5, backoff_max=2.0, opener=device,
                           clock=lambda: now[0], on_event=lambda e, d: events.append((e, d)))
    assert grabber.read() is not None and grabber.read() is not None
    assert grabber.read() is None and events[-1][0] == CameraEvent.LOST  # unplugged
    device.down = device.opens + 3  # stays down for the next three attempts
    while grabber.read() is None:
        now[0] += 10.0  # past any backoff delay
    assert events[-1][0] == CameraEvent.OPENED and grabber.is_open
    retries = [e for e, d in events if e == CameraEvent.OPEN_FAILED]
    assert len(retries) == 3
    assert [d for e, d in events if e != CameraEvent.OPENED][1:] == [
        f"cannot open camera source 0; retrying in {s:.1f} s" for s in (1.0, 2.0, 2.0)]
    assert grabber.read() is not None


rclpy = pytest.importorskip("rclpy")


def test_camera_node_publishes_a_video_file_then_ends(tmp_path: Path) -> None:
    video = tmp_path / "long.avi"  # 6 s at 10 Hz: DDS discovery takes a few seconds here
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(60):
        writer.write(np.full((48, 64, 3), 4 * i, np.uint8))
    writer.release()
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from robomd_diagnoser.ros.bringup import Graph, NodeSpec

    graph = Graph([NodeSpec("robomd_ur5e", "camera_node", "camera", parameters={
        "source": str(video), "width": 32, "height": 24, "rate": 10.0, "loop": False,
        "frame_id": "test_cam"})], {"ROS_DOMAIN_ID": os.environ["ROS_DOMAIN_ID"]})
    received: list[Image] = []
    rclpy.init()
    node = rclpy.create_node("camera_listener")
    node.create_subscription(Image, "/robomd/camera/image_raw", received.append,
                             qos_profile_sensor_data)
    spinning = True

    def spin() -> None:
        while spinning:
            rclpy.spin_once(node, timeout_sec=0.1)

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    try:
        graph.start()
        assert graph.wait("camera", timeout=60) == 0, "the node ends with the video"
        time.sleep(0.3)
    finally:
        graph.stop()
        spinning = False
        spinner.join()
        node.destroy_node()
        rclpy.try_shutdown()
    assert received, "no frame received"
    msg = received[0]
    assert (msg.encoding, msg.width, msg.height, msg.header.frame_id) == ("rgb8", 32, 24,
                                                                          "test_cam")
    assert len(received) <= 60
