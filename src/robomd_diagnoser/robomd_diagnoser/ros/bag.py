"""Record a campaign to one rosbag2 bag in MCAP storage (readable by rosbags, mcap, ros2 bag).

Messages are serialized by rclpy (the CDR bytes that crossed DDS); the rosbags writer adds the
rosbag2 metadata and the message definitions. Each run of a campaign writes a bag of its own next
to the earlier ones, ``bag/``, ``bag.1/``, ``bag.2/``..., and never opens an earlier one for
writing, so an interrupted or killed run cannot damage what was recorded before it.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path
from typing import Any

from ament_index_python.packages import get_package_share_directory
from rclpy.serialization import serialize_message
from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

log = logging.getLogger(__name__)

BAG_NAME = "bag"
ROLLOUTS_TOPIC = "/robomd/campaign/rollouts"
IMAGE_TYPE = "sensor_msgs/msg/Image"
#: topic -> message type of the campaign topics every bag holds (plus the worlds' camera topics).
TOPICS: dict[str, str] = {
    ROLLOUTS_TOPIC: "robomd_msgs/msg/RolloutRecord",
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


def bag_parts(out_dir: str | Path) -> list[Path]:
    """The campaign's bags in the order they were written: ``bag``, ``bag.1``, ``bag.2``..."""
    out_dir = Path(out_dir)
    numbered = []
    for path in out_dir.glob(f"{BAG_NAME}.*"):
        match = re.fullmatch(rf"{BAG_NAME}\.(\d+)", path.name)
        if match and path.is_dir():
            numbered.append((int(match[1]), path))
    first = [out_dir / BAG_NAME] if (out_dir / BAG_NAME).is_dir() else []
    return first + [path for _n, path in sorted(numbered)]


def next_bag_part(out_dir: str | Path) -> Path:
    """Where the next run of the campaign in ``out_dir`` records its bag (a new directory)."""
    parts = bag_parts(out_dir)
    if not parts:
        return Path(out_dir) / BAG_NAME
    numbers = [int(part.name.rpartition(".")[2]) for part in parts if part.name != BAG_NAME]
    return Path(out_dir) / f"{BAG_NAME}.{max(numbers, default=0) + 1}"


def bagged_rollouts(parts: list[Path]) -> set[str]:
    """Store keys of the rollouts on :data:`ROLLOUTS_TOPIC` in ``parts``; a part that cannot be
    read (its run was killed before it closed the bag) is skipped with a warning."""
    store = typestore()
    keys = set()
    for part in parts:
        try:
            with Reader(part) as reader:
                conns = [c for c in reader.connections if c.topic == ROLLOUTS_TOPIC]
                for conn, _stamp, data in reader.messages(connections=conns):
                    keys.add(store.deserialize_cdr(data, conn.msgtype).key)
        except Exception as exc:  # rosbags raises several types for a damaged or partial bag
            log.warning("bag %s cannot be read (%s); its rollouts are recorded again", part, exc)
    return keys


class CampaignBag:
    """Thread-safe writer of one campaign bag.

    :param path: the bag directory; it must not exist (see :func:`next_bag_part`).
    :param image_topics: camera topics (sensor_msgs/Image) to hold besides :data:`TOPICS`.
    """

    def __init__(self, path: str | Path, image_topics: list[str] | tuple[str, ...] = ()) -> None:
        self.path = Path(path)
        self.types = typestore()
        self._lock = threading.Lock()
        self._writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        topics = {**TOPICS, **{t: IMAGE_TYPE for t in image_topics}}
        self._connections = {topic: self._writer.add_connection(topic, msgtype,
                                                                typestore=self.types)
                             for topic, msgtype in topics.items()}

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
    """Every message of a bag as (topic, timestamp ns, deserialized rosbags message); ``path``
    is one bag, or a campaign directory whose parts are read in order."""
    store = typestore()
    path = Path(path)
    parts = [path] if (path / "metadata.yaml").exists() or not bag_parts(path) else bag_parts(path)
    out = []
    for part in parts:
        with Reader(part) as reader:
            for conn, stamp, data in reader.messages():
                out.append((conn.topic, stamp, store.deserialize_cdr(data, conn.msgtype)))
    return out
