"""Answering operator prompts and arming the executor over ROS: the one place both operator
consoles (``robomd operator`` in a terminal, the browser console) do it."""

from __future__ import annotations

import threading

from rclpy.node import Node
from std_srvs.srv import SetBool

from robomd_msgs.srv import OperatorRespond

#: The answers to a prompt, as words (OperatorRespond's RESPONSE_<WORD>).
ANSWERS = ("done", "skip", "abort")


def call_service(client, request, timeout: float = 30.0):
    """Call a service from any thread but the one spinning its node; the response or None
    (service absent or no answer within ``timeout`` s)."""
    if not client.wait_for_service(timeout_sec=timeout):
        return None
    done = threading.Event()
    future = client.call_async(request)
    future.add_done_callback(lambda _f: done.set())
    return future.result() if done.wait(timeout) else None


class OperatorClient:
    """The operator's two requests, on ``node``'s clients.

    :param node: a node spun by an executor in another thread.
    :param namespace: the campaign's namespace.
    :param timeout: seconds to wait for a service to appear and for its answer.
    """

    def __init__(self, node: Node, namespace: str = "/robomd", timeout: float = 30.0) -> None:
        ns = namespace.rstrip("/")
        self.timeout = timeout
        self.respond_client = node.create_client(OperatorRespond, f"{ns}/operator/respond")
        self.arm_client = node.create_client(SetBool, f"{ns}/executor/arm")

    def respond(self, prompt_id: str, answer: str, note: str = "") -> tuple[bool, str]:
        """Answer prompt ``prompt_id`` with ``answer`` (one of :data:`ANSWERS`).

        :return: (accepted, the operator prompt node's message).
        :raises ValueError: for an answer that is not one of :data:`ANSWERS`.
        """
        if answer not in ANSWERS:
            raise ValueError(f"answer {answer!r}: use one of {', '.join(ANSWERS)}")
        request = OperatorRespond.Request(
            prompt_id=prompt_id, note=note,
            response=getattr(OperatorRespond.Request, f"RESPONSE_{answer.upper()}"))
        res = call_service(self.respond_client, request, self.timeout)
        if res is None:
            return False, "no answer from the operator prompt node (operator/respond)"
        return bool(res.accepted), res.message

    def arm(self, armed: bool) -> tuple[bool, str]:
        """Arm (the arm will move) or disarm (motion stops) the policy executor.

        :return: (done, the executor's message).
        """
        res = call_service(self.arm_client, SetBool.Request(data=armed), self.timeout)
        if res is None:
            return False, "executor/arm not available"
        return bool(res.success), res.message
