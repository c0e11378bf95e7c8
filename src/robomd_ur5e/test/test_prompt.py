"""The operator desk: done / skip / abort / timeout, without ROS."""

from __future__ import annotations

import threading
import time

from robomd_diagnoser.catalog import load_catalog, parse_catalog
from robomd_diagnoser.paths import find_config
from robomd_ur5e.prompt import Answer, ApplyStatus, OperatorDesk, Prompt, PromptKind

CATALOG = load_catalog(find_config("catalogs/real_lift.yaml"))


class Operator:
    """Answers every prompt the desk publishes with the next scripted answer, from a thread."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.prompts: list[Prompt] = []
        self.desk: OperatorDesk | None = None

    def __call__(self, prompt: Prompt | None) -> None:
        if prompt is None:
            return
        self.prompts.append(prompt)
        if self.answers:
            answer = self.answers.pop(0)
            threading.Timer(0.01, self.desk.respond, (prompt.prompt_id, answer, "note")).start()


def _desk(*answers: Answer, timeout_s: float = 5.0) -> tuple[OperatorDesk, Operator]:
    operator = Operator(*answers)
    desk = OperatorDesk(CATALOG, operator, timeout_s)
    operator.desk = desk
    return desk, operator


def test_done_applies_and_the_instruction_uses_the_catalog_text() -> None:
    desk, operator = _desk(Answer.DONE, Answer.DONE)
    applied = []
    assert desk.apply(["light_red"], applied.append)[0] == ApplyStatus.APPLIED
    assert applied == [["light_red"]] and desk.scene == ("light_red",)
    status, _ = desk.apply(["light_red", "object_sprite"])
    assert status == ApplyStatus.APPLIED
    prompt = operator.prompts[-1]
    assert prompt.kind == PromptKind.APPLY
    assert "Do: Replace the object with a green Sprite bottle." in prompt.instruction
    assert prompt.perturbations == ("light_red", "object_sprite")


def test_no_prompt_when_nothing_changes() -> None:
    desk, operator = _desk(Answer.DONE, timeout_s=0.3)
    assert desk.reset()[0] and len(operator.prompts) == 1  # unknown scene: ask once
    assert desk.reset() == (True, "the scene is already nominal")
    assert desk.apply([]) == (ApplyStatus.APPLIED, "the scene already shows this")
    assert len(operator.prompts) == 1
    desk.rollout_started()
    assert desk.reset()[0] is False  # a rollout moved the object: asked again (no answer here)
    assert len(operator.prompts) == 2


def test_skip_is_unavailable_and_leaves_the_scene() -> None:
    desk, _ = _desk(Answer.SKIP, Answer.SKIP)
    status, message = desk.apply(["table_red"])
    assert status == ApplyStatus.UNAVAILABLE and "skipped" in message and "note" in message
    assert desk.scene == ()
    assert desk.reset() == (False, "operator skipped the reset (note)")


def test_abort_aborts_this_and_every_later_request() -> None:
    desk, operator = _desk(Answer.ABORT)
    assert desk.apply(["table_red"])[0] == ApplyStatus.ABORTED and desk.aborted
    assert desk.apply(["light_red"])[0] == ApplyStatus.ABORTED
    assert desk.reset()[0] is False
    assert len(operator.prompts) == 1


def test_timeout_aborts_the_request_but_not_the_desk() -> None:
    desk, _ = _desk(timeout_s=0.3)
    status, message = desk.apply(["table_red"])
    assert status == ApplyStatus.ABORTED and "no operator answer within" in message
    assert not desk.aborted and desk.pending is None and desk.scene == ()


def test_unknown_names_and_stale_answers_are_rejected() -> None:
    desk, _ = _desk()
    status, message = desk.apply(["cube_purple"])
    assert status == ApplyStatus.REJECTED and "cube_purple" in message
    accepted, message = desk.respond("p99", Answer.DONE)
    assert not accepted and "not pending" in message


def test_timeout_is_not_an_answer() -> None:
    desk, operator = _desk(timeout_s=0.5)
    replies = []

    def answer_later() -> None:
        while not operator.prompts:
            time.sleep(0.01)
        replies.append(desk.respond(operator.prompts[0].prompt_id, Answer.TIMEOUT))

    threading.Thread(target=answer_later).start()
    desk.apply(["table_red"])
    assert replies and replies[0][0] is False


def test_only_the_physical_part_is_asked_for() -> None:
    catalog = parse_catalog({
        "task": "lift", "world": "real",
        "perturbations": [{"name": "table_red", "text": "Cover the table with the red sheet",
                           "kind": "color", "target": "table", "value": [1, 0, 0, 1]}],
        "families": [{"name": "lamp", "factor": "light_intensity", "values": [0.5]},
                     {"name": "image_noise", "factor": "image_noise", "values": [0.1]}],
        "combinations": {"order": 2}}, "mixed")
    operator = Operator(Answer.DONE, Answer.DONE)
    desk = OperatorDesk(catalog, operator, 5.0)
    operator.desk = desk
    applied = []
    assert desk.apply(["image_noise_0p1"], applied.append) == (
        ApplyStatus.APPLIED, "the scene already shows this")
    assert not operator.prompts and not applied, "digital only: nobody is asked"
    status, message = desk.apply(["lamp_0p5+image_noise_0p1"], applied.append)
    assert status == ApplyStatus.APPLIED and message == "operator confirmed: lamp_0p5 (note)"
    prompt = operator.prompts[-1]
    assert prompt.perturbations == ("lamp_0p5",) and applied == [["lamp_0p5"]]
    assert "Do: Scale light intensity by 0.5." in prompt.instruction
    assert "noise" not in prompt.instruction
    assert desk.apply(["lamp_0p5", "image_noise_0p1"])[0] == ApplyStatus.APPLIED
    assert len(operator.prompts) == 1, "the same physical scene: no new prompt"
    desk.apply(["table_red", "lamp_0p5+image_noise_0p1"])
    assert operator.prompts[-1].perturbations == ("table_red", "lamp_0p5")
    assert "Do: Cover the table with the red sheet." in operator.prompts[-1].instruction


def test_real_lift_prompts_for_its_single_entries_only() -> None:
    """Of real_lift's members, only the physical entries reach the operator; its digital
    families' members (levels and pairs) never do."""
    prompted = []
    for name in CATALOG.names:
        desk, operator = _desk(Answer.DONE)
        assert desk.apply([name])[0] == ApplyStatus.APPLIED
        if operator.prompts:
            prompted.append(name)
    assert prompted == [p.name for p in CATALOG.perturbations]
    assert len(CATALOG) > 2 * len(prompted), "the digital families are most of the space"


def test_automatic_reset_only_after_a_confirmed_nominal_scene_with_a_rollout() -> None:
    desk, operator = _desk(Answer.DONE, Answer.DONE)
    calls = []

    def restore(ok: bool = True):
        calls.append(ok)
        return ok, "placed back"

    assert desk.reset_automatically(restore) == (
        False, "no operator has confirmed the nominal scene yet")
    assert desk.reset()[0] and desk.confirmed
    assert desk.reset_automatically(restore) == (True, "the scene is already nominal")
    assert calls == [], "nothing to undo before a rollout"
    desk.rollout_started()
    ok, message = desk.reset_automatically(restore)
    assert ok and message == "automatic reset (1 automatic, 1 by the operator so far): placed back"
    assert not desk.dirty and calls == [True]
    desk.rollout_started()
    assert desk.reset_automatically(lambda: restore(False)) == (False, "placed back")
    assert desk.dirty, "a failed restore leaves the scene for the operator"
    assert desk.apply(["light_red"])[0] == ApplyStatus.APPLIED
    assert desk.reset_automatically(restore) == (
        False, "the scene shows physical changes ['light_red']")
    assert calls == [True, False] and len(operator.prompts) == 2
