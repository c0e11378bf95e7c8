"""sensor_msgs/Image <-> numpy without cv_bridge (rgb8, bgr8, rgba8, bgra8, mono8)."""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import Image

_CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}


class ImageEncodingError(ValueError):
    """The image message cannot be converted; the message says which field is wrong."""


def to_msg(image: np.ndarray, frame_id: str = "camera", stamp=None) -> Image:
    """Wrap an HxWx3 uint8 RGB array as an ``rgb8`` Image message.

    :param image: HxWx3 uint8, upright, RGB.
    :param frame_id: the camera's frame.
    :param stamp: a builtin_interfaces/Time; left zero when None.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ImageEncodingError(f"expected an HxWx3 uint8 RGB array, got {image.dtype} "
                                 f"{image.shape}")
    msg = Image()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(image.shape[0]), int(image.shape[1])
    msg.encoding = "rgb8"
    msg.is_bigendian = 0
    msg.step = msg.width * 3
    msg.data = np.ascontiguousarray(image).tobytes()
    return msg


def from_msg(msg: Image) -> np.ndarray:
    """Convert an Image message to an HxWx3 uint8 RGB array.

    :raises ImageEncodingError: for an unsupported encoding or inconsistent size fields.
    """
    channels = _CHANNELS.get(msg.encoding)
    if channels is None:
        raise ImageEncodingError(
            f"Image.encoding {msg.encoding!r} is not supported; publish one of "
            f"{', '.join(_CHANNELS)} (8-bit)")
    if msg.step < msg.width * channels or len(msg.data) < msg.step * msg.height:
        raise ImageEncodingError(
            f"Image.step/data inconsistent with {msg.width}x{msg.height} {msg.encoding}: "
            f"step {msg.step}, {len(msg.data)} bytes")
    rows = np.frombuffer(bytes(msg.data), dtype=np.uint8)[: msg.step * msg.height]
    arr = rows.reshape(msg.height, msg.step)[:, : msg.width * channels]
    arr = arr.reshape(msg.height, msg.width, channels)
    if msg.encoding == "mono8":
        return np.repeat(arr, 3, axis=2)
    if msg.encoding.startswith("bgr"):
        arr = arr[:, :, 2::-1]
    return np.ascontiguousarray(arr[:, :, :3])
