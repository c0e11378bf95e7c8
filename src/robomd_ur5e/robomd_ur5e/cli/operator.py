"""``robomd operator``: the operator console of a real-robot campaign (a second terminal).

Shows each prompt of ``operator/prompt`` and answers it on ``operator/respond`` with what the
operator types: ``d`` done, ``s`` skip, ``a`` abort (optionally followed by a note). ``--auto
done`` answers every prompt by itself (scripted dry runs). ``--arm`` arms the executor first
(after a confirmation unless ``--auto``). A robot fault disarms the executor: the console says so,
and ``arm`` typed at any answer arms it again (with ``--auto`` and ``--arm``, the console re-arms
by itself before answering the next prompt, once the scene reset has cleared a simulated fault).
Judged rollouts and campaign progress are shown too.
"""

from __future__ import annotations

import argparse
import os
import queue
import sys
import threading
import time

ANSWERS = {"d": "done", "s": "skip", "a": "abort"}  # one letter per OperatorClient answer


def parse_answer(line: str) -> tuple[str, str] | None:
    """``'s no red sheet'`` -> ``('skip', 'no red sheet')``; None if not an answer."""
    word, _, note = line.strip().partition(" ")
    word = word.lower()
    answer = ANSWERS.get(word) or (word if word in ANSWERS.values() else None)
    return None if answer is None else (answer, note.strip())


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "operator", help="operator console for a real-robot campaign (answer scene prompts)",
        description="Shows the operator prompts of a running UR5e campaign and sends your "
                    "answers: d = done, s = skip (recorded as unavailable, never as a failure), "
                    "a = abort the campaign; a note may follow the letter.")
    p.add_argument("--auto", choices=("done", "skip", "abort"),
                   help="answer every prompt with this, without asking (scripted dry runs)")
    p.add_argument("--arm", action="store_true",
                   help="arm the policy executor first (the arm will move); with --auto, also "
                        "re-arm after a fault disarmed it (scripted dry runs only)")
    p.add_argument("--mock-hardware", "--fake-hardware", dest="fake_hardware",
                   action="store_true",
                   help="join a mock-hardware dry run (its localhost-only ROS domain; "
                        "--fake-hardware: the older name)")
    p.add_argument("--domain-id", type=int, default=None,
                   help="with --mock-hardware: the dry run's ROS_DOMAIN_ID, as its bringup "
                        "printed it (default: 77)")
    p.add_argument("--namespace", default="/robomd", help="the campaign's namespace")
    p.add_argument("--exit-when-done", action="store_true",
                   help="exit when the campaign reports done or fault")
    p.set_defaults(func=run)


class _Console:
    """The ROS side: subscriptions, the operator's requests, and a queue of prompts."""

    def __init__(self, namespace: str) -> None:
        import rclpy
        from rclpy.executors import MultiThreadedExecutor

        from robomd_diagnoser.ros.node import LATCHED
        from robomd_msgs.msg import CampaignStatus, ExecutorStatus, OperatorPrompt, RolloutOutcome
        from robomd_ur5e.operator_client import OperatorClient

        ns = namespace.rstrip("/")
        self.node = rclpy.create_node(f"operator_console_{os.getpid()}")
        self.prompts: queue.Queue = queue.Queue()
        self.finished = threading.Event()
        self.armed: bool | None = None  # as the executor last said (executor/status)
        self._kinds = {OperatorPrompt.KIND_APPLY: "CHANGE THE SCENE",
                       OperatorPrompt.KIND_RESET: "RESET THE SCENE"}
        self._done_states = {CampaignStatus.STATE_DONE, CampaignStatus.STATE_FAULT}
        self.client = OperatorClient(self.node, ns)
        self.node.create_subscription(OperatorPrompt, f"{ns}/operator/prompt", self._on_prompt,
                                      LATCHED)
        self.node.create_subscription(RolloutOutcome, f"{ns}/rollout/outcome", self._on_outcome,
                                      10)
        self.node.create_subscription(ExecutorStatus, f"{ns}/executor/status",
                                      self._on_executor_status, LATCHED)
        self.node.create_subscription(CampaignStatus, f"{ns}/campaign/status", self._on_status,
                                      10)
        self.executor = MultiThreadedExecutor(num_threads=2)
        self.executor.add_node(self.node)
        threading.Thread(target=self.executor.spin, daemon=True).start()

    def _on_prompt(self, msg) -> None:
        if msg.kind in self._kinds and msg.prompt_id:
            self.prompts.put(msg)

    def _on_executor_status(self, msg) -> None:
        if self.armed and not msg.armed:
            print("\n*** the executor is DISARMED (a robot fault or the operator; see its log). "
                  "Clear any stop on the pendant, then type 'arm' to arm it again. ***",
                  flush=True)
        self.armed = bool(msg.armed)

    def arm(self) -> bool:
        """Ask the executor to arm; prints its answer; True if armed."""
        armed, message = self.client.arm(True)
        print(f"executor: {message}", flush=True)
        return armed

    def _on_outcome(self, msg) -> None:
        verdict = "SUCCESS" if msg.success else "FAILURE"
        print(f"[rollout {msg.rollout_id}] {verdict} by {msg.judge} (confidence "
              f"{msg.confidence:.2f}): {msg.reason}", flush=True)

    def _on_status(self, msg) -> None:
        if msg.state in self._done_states:
            if not self.finished.is_set():
                print(f"[campaign] {msg.message}", flush=True)
            self.finished.set()

    def show(self, msg) -> None:
        print(f"\n=== {self._kinds[msg.kind]} (prompt {msg.prompt_id}) ===\n{msg.instruction}",
              flush=True)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


def _stdin_lines(lines: queue.Queue) -> None:
    for line in sys.stdin:
        lines.put(line)
    lines.put(None)


def run(args: argparse.Namespace) -> int:
    import rclpy

    from robomd_diagnoser.ros.bringup import SIM_DOMAIN_ID
    from robomd_diagnoser.ros.network import loopback_env
    from robomd_ur5e.bringup import domain_env

    os.environ.update(domain_env(args.fake_hardware, args.domain_id or SIM_DOMAIN_ID))
    os.environ.update(loopback_env(os.environ))
    rclpy.init()
    console = _Console(args.namespace)
    lines: queue.Queue = queue.Queue()
    if args.auto is None:
        threading.Thread(target=_stdin_lines, args=(lines,), daemon=True).start()
    try:
        if args.arm:
            if args.auto is None:
                print("Arm the executor? The arm will move. Type 'arm' to confirm: ", end="",
                      flush=True)
                line = lines.get()
                if line is None or line.strip() != "arm":
                    print("not armed")
                    return 1
            if not console.arm():
                return 1
        print("waiting for prompts (Ctrl-C to quit)", flush=True)
        while not (args.exit_when_done and console.finished.is_set()):
            try:
                prompt = console.prompts.get(timeout=0.2)
            except queue.Empty:
                continue
            console.show(prompt)
            if args.auto is not None and args.arm and console.armed is False:
                console.arm()
            if args.auto is not None:
                answer = (args.auto, "auto")
            else:
                answer = None
                while answer is None:
                    print("[d]one / [s]kip / [a]bort (+ note), or arm? ", end="", flush=True)
                    line = lines.get()
                    if line is None:
                        return 0
                    if line.strip().lower() == "arm":
                        console.arm()
                        continue
                    answer = parse_answer(line)
            _accepted, reply = console.client.respond(prompt.prompt_id, *answer)
            print(f"-> {answer[0]}: {reply}", flush=True)
            time.sleep(0.05)
        return 0
    except KeyboardInterrupt:
        return 130
    finally:
        console.close()
        rclpy.try_shutdown()
