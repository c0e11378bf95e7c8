"""camera node: an OpenCV camera (device, video file or stream) on ``camera/image_raw``.

Publishes rgb8 frames with sensor-data QoS at ``rate`` Hz. A lost device or stream is logged and
reopened with backoff until it delivers again (no restart needed); a video file loops or, with
``loop: false``, ends the node when it is over.
"""

from __future__ import annotations

from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from robomd_diagnoser.ros.image import to_msg
from robomd_diagnoser.ros.node import Param, ParameterError, declare, spin_node
from robomd_ur5e.camera import CameraEvent, FrameGrabber

#: Every parameter is read-only once the node runs.
PARAMETERS: dict[str, Param] = {
    "source": Param("0", "device index (0), video file path or stream URL"),
    "width": Param(640, "frame width in pixels (frames of another size are resized; "
                        "0: as captured)"),
    "height": Param(480, "frame height in pixels (0: as captured)"),
    "rate": Param(15.0, "publish rate, Hz"),
    "frame_id": Param("scene_camera", "frame_id of published images"),
    "loop": Param(True, "a video file restarts at its end (false: the node ends with the video)"),
    "backoff_min": Param(0.5, "first delay before reopening a lost camera, s"),
    "backoff_max": Param(10.0, "longest delay between reopen attempts, s"),
}


class CameraNode(Node):
    """Publishes frames of one OpenCV source."""

    def __init__(self) -> None:
        super().__init__("camera", namespace="/robomd")
        p = declare(self, PARAMETERS)
        if not float(p["rate"]) > 0:
            raise ParameterError(f"parameter rate={p['rate']!r}: a positive rate in Hz")
        self.frame_id = str(p["frame_id"])
        self.finished = False
        self.grabber = FrameGrabber(str(p["source"]), int(p["width"]), int(p["height"]),
                                    bool(p["loop"]), float(p["backoff_min"]),
                                    float(p["backoff_max"]), on_event=self._on_event)
        self.pub = self.create_publisher(Image, "camera/image_raw", qos_profile_sensor_data)
        self.create_timer(1.0 / float(p["rate"]), self._tick)
        self.get_logger().info(f"camera {self.grabber.source!r} at {p['rate']} Hz, "
                               f"{p['width']}x{p['height']}")

    def _on_event(self, event: CameraEvent, detail: str) -> None:
        log = self.get_logger()
        if event in (CameraEvent.LOST, CameraEvent.OPEN_FAILED):
            log.warning(f"camera status: {detail}")
        else:
            log.info(f"camera status: {detail}")

    def _tick(self) -> None:
        frame = self.grabber.read()
        if frame is not None:
            self.pub.publish(to_msg(frame, self.frame_id, self.get_clock().now().to_msg()))
        elif self.grabber.ended:
            self.finished = True

    def destroy_node(self) -> None:
        self.grabber.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``camera_node`` executable."""
    spin_node(CameraNode, "camera", threads=1, args=args)


if __name__ == "__main__":
    main()
