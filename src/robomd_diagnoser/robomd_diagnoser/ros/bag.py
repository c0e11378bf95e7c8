"""Record a campaign to one rosbag2 bag in MCAP storage (readable by rosbags, mcap, ros2 bag).

Messages are serialized by rclpy (the CDR bytes that crossed DDS); the rosbags writer adds the
rosbag2 metadata and the message definitions. A resumed campaign copies the earlier bag's
messages into the new one, so a campaign always has exactly one bag.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from typing import Any

from ament_index_python.packages import get_package_share_directory
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

IMAGE_TYPE = "sensor_msgs/msg/Image"
#: topic -> message type of the campaign topics every bag holds (plus the worlds' camera topics).
TOPICS: dict[str, str] = {
    "/robomd/campaign/rollouts": "robomd_msgs/msg/RolloutRecord",
    "/robomd/campaign/status": "robomd_msgs/msg/CampaignStatus",
    "/robomd/campaign/report": "robomd_msgs/msg/FailureReport",
}


def typestore() -> Typestore:
    """ROS 2 Jazzy types plus robomd_msgs' messages, read from the installed .msg files."""
    store = get_typestore(Stores.ROS2_JAZZY)
    msg_dir = Path(get_package_share_directory("robomd_msgs")) / "msg"
    types: dict[str, Any] = {}
    for path in sorted(msg_dir.glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"robomd_msgs/msg/{path.stem}"))
    store.register(types)
    return store


class CampaignBag:
    """Thread-safe writer of one campaign bag.

    :param path: the bag directory (created; an existing bag there is carried over).
    :param image_topics: camera topics (sensor_msgs/Image) to hold besides :data:`TOPICS`.
    """

    def __init__(self, path: str | Path, image_topics: list[str] | tuple[str, ...] = ()) -> None:
        self.path = Path(path)
        self.types = typestore()
        self._lock = threading.Lock()
        previous = None
        if self.path.exists():
            previous = self.path.with_name(self.path.name + ".previous")
            shutil.rmtree(previous, ignore_errors=True)
            self.path.rename(previous)
        self._writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        topics = {**TOPICS, **{t: IMAGE_TYPE for t in image_topics}}
        self._connections = {topic: self._writer.add_connection(topic, msgtype,
                                                                typestore=self.types)
                             for topic, msgtype in topics.items()}
        if previous is not None:
            with Reader(previous) as reader:
                for conn, stamp, data in reader.messages():
                    if conn.topic in self._connections:
                        self._writer.write(self._connections[conn.topic], stamp, data)
            shutil.rmtree(previous)

    def write(self, topic: str, msg: Any, stamp_ns: int | None = None) -> None:
        """Append an rclpy message on one of :data:`TOPICS`.

        :param topic: the topic it belongs to.
        :param msg: the rclpy message.
        :param stamp_ns: receive time in nanoseconds; now if None.
        """
        data = serialize_message(msg)
        with self._lock:
            if self._writer is None:
                return
            self._writer.write(self._connections[topic], stamp_ns or time.time_ns(), data)

    def close(self) -> None:
        """Finish the bag (writes its metadata.yaml)."""
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None


def read_bag(path: str | Path) -> list[tuple[str, int, Any]]:
    """Every message of a bag as (topic, timestamp ns, deserialized rosbags message)."""
    store = typestore()
    out = []
    with Reader(path) as reader:
        for conn, stamp, data in reader.messages():
            out.append((conn.topic, stamp, store.deserialize_cdr(data, conn.msgtype)))
    return out
