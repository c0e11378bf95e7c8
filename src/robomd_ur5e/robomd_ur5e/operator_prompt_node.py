"""operator_prompt node: serves ``apply_perturbation`` and ``reset_scene`` by asking a person.

Each perturbation is split (:func:`robomd_diagnoser.digital.split`) into its physical part, which
the operator is asked to make, and its digital levels, which the policy executor applies
(``executor/digital``, set once the physical part is in place, cleared on reset) without anyone: a
request whose physical part the scene already shows raises no prompt. Each physical change becomes
an OperatorPrompt on ``operator/prompt`` (latched) with the catalog's natural-language instruction;
the operator answers through ``operator/respond`` (OperatorRespond: done / skip / abort), e.g. from
``robomd operator``. The answers' meaning is in :mod:`robomd_ur5e.prompt`. ``reset_scene`` first
homes the arm (``executor/home``) so the operator works in a clear scene. With ``auto_reset``, a
reset whose scene shows no physical change first asks the executor to put the object back and check
the scene (``executor/place_back``); only if that fails is the operator prompted (the prompt says
why). An abort also stops the campaign (``campaign/stop``) and disarms the executor. With
``fake_scene``, every confirmed change is also made to the simulated scene (``fake_hardware/*``,
served by the executor on fake hardware)."""

from __future__ import annotations

import threading

from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node
from std_srvs.srv import SetBool, Trigger

from robomd_diagnoser.catalog import CatalogError, load_catalog
from robomd_diagnoser.digital import split
from robomd_diagnoser.ros.convert import perturbation_to_msg
from robomd_diagnoser.ros.node import LATCHED, Param, ParameterError, declare, spin_node
from robomd_msgs.msg import OperatorPrompt, RolloutState
from robomd_msgs.srv import (
    ApplyPerturbation,
    OperatorRespond,
    ResetScene,
    SetDigitalPerturbations,
)
from robomd_ur5e.prompt import Answer, ApplyStatus, OperatorDesk, Prompt, PromptKind

#: Every parameter is read-only once the node runs.
PARAMETERS: dict[str, Param] = {
    "catalog": Param("", "perturbation catalog YAML (required; world: real)"),
    "timeout_s": Param(600.0, "seconds a prompt waits for the operator (0: forever)"),
    "home_timeout": Param(60.0, "seconds to wait for executor/home"),
    "digital_timeout": Param(30.0, "seconds to wait for executor/digital"),
    "auto_reset": Param(False, "reset a scene with no physical change without the operator: "
                               "the executor puts the object back and checks the scene "
                               "(executor/place_back); the operator is prompted if that fails"),
    "place_back_timeout": Param(120.0, "seconds to wait for executor/place_back"),
    "fake_scene": Param(False, "also apply confirmed changes to the simulated scene "
                               "(fake hardware)"),
}
_ANSWERS = {OperatorRespond.Request.RESPONSE_DONE: Answer.DONE,
            OperatorRespond.Request.RESPONSE_SKIP: Answer.SKIP,
            OperatorRespond.Request.RESPONSE_ABORT: Answer.ABORT}
_APPLY_STATUS = {ApplyStatus.APPLIED: ApplyPerturbation.Response.STATUS_APPLIED,
                 ApplyStatus.UNAVAILABLE: ApplyPerturbation.Response.STATUS_UNAVAILABLE,
                 ApplyStatus.REJECTED: ApplyPerturbation.Response.STATUS_REJECTED,
                 ApplyStatus.ABORTED: ApplyPerturbation.Response.STATUS_ABORTED}


class OperatorPromptNode(Node):
    """Turns scene requests into operator prompts."""

    def __init__(self) -> None:
        super().__init__("operator_prompt", namespace="/robomd")
        p = declare(self, PARAMETERS)
        if not p["catalog"]:
            raise ParameterError("parameter catalog is required: the real-world catalog YAML "
                                 "(e.g. config/catalogs/real_lift.yaml)")
        self.catalog = load_catalog(str(p["catalog"]))
        self.home_timeout = float(p["home_timeout"])
        self.digital_timeout = float(p["digital_timeout"])
        self.auto_reset = bool(p["auto_reset"])
        self.place_back_timeout = float(p["place_back_timeout"])
        self._digital_set = False  # the executor may hold digital perturbations set from here
        self.fake_scene = bool(p["fake_scene"])
        self.desk = OperatorDesk(self.catalog, self._publish, float(p["timeout_s"]))
        self._serial = threading.Lock()  # one scene request at a time
        group = ReentrantCallbackGroup()
        self.prompt_pub = self.create_publisher(OperatorPrompt, "operator/prompt", LATCHED)
        self._home = self.create_client(Trigger, "executor/home", callback_group=group)
        self._place_back = self.create_client(Trigger, "executor/place_back",
                                              callback_group=group)
        self._arm = self.create_client(SetBool, "executor/arm", callback_group=group)
        self._digital = self.create_client(SetDigitalPerturbations, "executor/digital",
                                           callback_group=group)
        self._stop = self.create_client(Trigger, "campaign/stop", callback_group=group)
        self._fake_apply = self.create_client(ApplyPerturbation,
                                              "fake_hardware/apply_perturbation",
                                              callback_group=group)
        self._fake_reset = self.create_client(ResetScene, "fake_hardware/reset_scene",
                                              callback_group=group)
        self.create_subscription(RolloutState, "executor/rollout_state", self._on_state, 10,
                                 callback_group=group)
        self.create_service(ApplyPerturbation, "apply_perturbation", self._apply,
                            callback_group=group)
        self.create_service(ResetScene, "reset_scene", self._reset, callback_group=group)
        self.create_service(OperatorRespond, "operator/respond", self._respond,
                            callback_group=group)
        self._publish(None)
        self.get_logger().info(f"operator prompt ready: catalog {self.catalog.source} "
                               f"({len(self.catalog)} perturbations), prompt timeout "
                               f"{p['timeout_s']} s, automatic reset "
                               f"{'on' if self.auto_reset else 'off'}")

    # ------------------------------------------------------------------ helpers
    def _call(self, client, request, timeout: float):
        """Call a service from a callback; the response, or None (absent or no answer)."""
        if not client.wait_for_service(timeout_sec=min(timeout, 2.0)):
            return None
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _f: done.set())
        if not done.wait(timeout):
            future.cancel()
            return None
        return future.result()

    def _publish(self, prompt: Prompt | None) -> None:
        msg = OperatorPrompt()
        msg.header.stamp = self.get_clock().now().to_msg()
        if prompt is None:
            msg.kind = OperatorPrompt.KIND_INFO
            msg.instruction = "No action needed."
        else:
            msg.prompt_id = prompt.prompt_id
            msg.kind = (OperatorPrompt.KIND_APPLY if prompt.kind == PromptKind.APPLY
                        else OperatorPrompt.KIND_RESET)
            msg.instruction = prompt.instruction
            msg.perturbations = [perturbation_to_msg(self.catalog[n])
                                 for n in prompt.perturbations]
            msg.timeout_s = float(prompt.timeout_s)
            self.get_logger().info(f"prompt {prompt.prompt_id}: {prompt.instruction}")
        self.prompt_pub.publish(msg)

    def _on_state(self, msg: RolloutState) -> None:
        if msg.phase == RolloutState.PHASE_START:
            self.desk.rollout_started()

    def _after_abort(self) -> None:
        self.get_logger().warning("operator aborted: stopping the campaign, disarming")
        self._call(self._arm, SetBool.Request(data=False), 5.0)
        self._call(self._stop, Trigger.Request(), 5.0)

    def _set_digital(self, names: list[str]) -> tuple[ApplyStatus, str]:
        """Have the executor apply the digital levels of ``names`` (none: clear them).

        Nominal to nominal needs no call (a restarted executor starts nominal too).

        :return: APPLIED and what is in effect; ABORTED when the executor does not answer;
            UNAVAILABLE when it refuses a level.
        """
        wanted = any(split(self.catalog[n])[1] for n in names)
        if not wanted and not self._digital_set:
            return ApplyStatus.APPLIED, "digital perturbations: none"
        request = SetDigitalPerturbations.Request(
            perturbations=[perturbation_to_msg(self.catalog[n]) for n in names])
        reply = self._call(self._digital, request, self.digital_timeout)
        if reply is None:
            return ApplyStatus.ABORTED, ("executor/digital did not answer: is the policy "
                                         "executor running?")
        if not reply.success:
            return ApplyStatus.UNAVAILABLE, reply.message
        self._digital_set = wanted
        return ApplyStatus.APPLIED, reply.message

    def _restore(self) -> tuple[bool, str]:
        """The automatic reset: the executor's place-back and scene check."""
        reply = self._call(self._place_back, Trigger.Request(), self.place_back_timeout)
        if reply is None:
            return False, "executor/place_back did not answer"
        return reply.success, reply.message

    # ------------------------------------------------------------------ services
    def _respond(self, req, res):
        answer = _ANSWERS.get(req.response)
        if answer is None:
            res.accepted, res.message = False, (f"response {req.response}: use RESPONSE_DONE, "
                                                "RESPONSE_SKIP or RESPONSE_ABORT")
            return res
        res.accepted, res.message = self.desk.respond(req.prompt_id, answer, req.note)
        return res

    def _apply(self, req, res):
        def simulate(names) -> None:
            reply = self._call(self._fake_apply,
                               ApplyPerturbation.Request(perturbations=list(names)), 30.0)
            self.get_logger().info(f"fake scene: {reply.message if reply else 'no answer'}")

        with self._serial:
            was_aborted = self.desk.aborted
            status, message = self.desk.apply(list(req.perturbations),
                                              simulate if self.fake_scene else None)
            if status == ApplyStatus.APPLIED:
                status, digital = self._set_digital(list(req.perturbations))
                message = f"{message}; {digital}"
        if status == ApplyStatus.ABORTED and self.desk.aborted and not was_aborted:
            self._after_abort()
        res.status, res.message = _APPLY_STATUS[status], message
        return res

    def _reset(self, req, res):
        def simulate() -> None:
            reply = self._call(self._fake_reset, ResetScene.Request(seed=req.seed), 30.0)
            self.get_logger().info(f"fake scene: {reply.message if reply else 'no answer'}")

        with self._serial:
            was_aborted = self.desk.aborted
            restored, how = (self.desk.reset_automatically(self._restore) if self.auto_reset
                             else (False, ""))
            if restored:
                res.success, res.message = True, how
            else:
                homed = self._call(self._home, Trigger.Request(), self.home_timeout)
                note = f"Not reset automatically: {how}." if how else ""
                if homed is None:
                    note += " The arm was NOT homed (executor/home did not answer): jog it clear."
                elif not homed.success:
                    note += f" The arm was NOT homed ({homed.message})."
                res.success, res.message = self.desk.reset(note.strip(), simulate
                                                           if self.fake_scene else None)
            if res.success:
                cleared, digital = self._set_digital([])
                res.success = cleared == ApplyStatus.APPLIED
                res.message = f"{res.message}; {digital}"
            self.get_logger().info(f"reset_scene: {res.message}")
        if self.desk.aborted and not was_aborted:
            self._after_abort()
        return res


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``operator_prompt_node`` executable."""
    spin_node(OperatorPromptNode, "operator_prompt", fatal=(ParameterError, CatalogError),
              args=args)


if __name__ == "__main__":
    main()
