"""preview_twin node: renders, in simulation, the scene an operator prompt asks for.

For every ``operator/prompt`` that asks for a change (KIND_APPLY), the simulated twin of the task
(robosuite, the task's simulated catalog) renders the nominal scene and the scene with the
prompt's perturbations, and publishes them latched on ``operator/preview/nominal`` and
``operator/preview/requested`` (sensor_msgs/Image, ``header.frame_id`` = the prompt id), for the
browser console to show beside the prompt. Only perturbations the simulated catalog has (same
name: colours, lights, sizes) are rendered; object swaps are not (logged as such), so their
preview looks nominal.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from rclpy.node import Node
from sensor_msgs.msg import Image

from robomd_diagnoser.catalog import CatalogError
from robomd_diagnoser.ros.image import to_msg
from robomd_diagnoser.ros.node import LATCHED, Param, ParameterError, declare, spin_node
from robomd_msgs.msg import OperatorPrompt

#: Every parameter is read-only once the node runs.
PARAMETERS: dict[str, Param] = {
    "task": Param("lift", "the simulated task (its catalog: config/catalogs/<task>.yaml)"),
    "size": Param(160, "rendered preview size, pixels (square)"),
    "seed": Param(0, "scene seed of the previews (object placement)"),
}


class PreviewTwinNode(Node):
    """Renders prompt previews with a simulated twin of the scene."""

    def __init__(self) -> None:
        super().__init__("preview_twin", namespace="/robomd")
        p = declare(self, PARAMETERS)
        if not 16 <= int(p["size"]) <= 1024:
            raise ParameterError(f"parameter size={p['size']}: 16..1024 pixels")
        self.size, self.seed = int(p["size"]), int(p["seed"])
        # the renderer's GL context belongs to the thread that created it: one thread for all
        self._sim = ThreadPoolExecutor(max_workers=1, thread_name_prefix="twin")
        from robomd_ur5e.fake import make_fake_robot

        self.twin = self._sim.submit(make_fake_robot, str(p["task"]), self.size).result()
        self.pubs = {name: self.create_publisher(Image, f"operator/preview/{name}", LATCHED)
                     for name in ("nominal", "requested")}
        self.create_subscription(OperatorPrompt, "operator/prompt", self._on_prompt, LATCHED)
        self.get_logger().info(f"preview twin ready: task {p['task']}, {self.size} px")

    def _render(self, names: list[str]):
        self.twin.reset(self.seed)
        nominal = self.twin.render(self.size)
        missing = self.twin.apply(names)
        return nominal, self.twin.render(self.size), missing

    def _on_prompt(self, msg: OperatorPrompt) -> None:
        if msg.kind != OperatorPrompt.KIND_APPLY or not msg.prompt_id:
            return
        names = [q.name for q in msg.perturbations]
        nominal, requested, missing = self._sim.submit(self._render, names).result()
        stamp = self.get_clock().now().to_msg()
        self.pubs["nominal"].publish(to_msg(nominal, msg.prompt_id, stamp))
        self.pubs["requested"].publish(to_msg(requested, msg.prompt_id, stamp))
        note = f"; not simulated: {', '.join(missing)}" if missing else ""
        self.get_logger().info(f"preview of prompt {msg.prompt_id}: {names}{note}")

    def destroy_node(self) -> None:
        self._sim.submit(self.twin.world.close).result()
        self._sim.shutdown()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``preview_twin_node`` executable."""
    spin_node(PreviewTwinNode, "preview_twin", threads=1,
              fatal=(ParameterError, CatalogError), args=args)


if __name__ == "__main__":
    main()
