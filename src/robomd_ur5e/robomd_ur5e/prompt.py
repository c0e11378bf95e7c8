"""The operator prompt's state machine (no ROS here).

A real scene is changed by a person. :class:`OperatorDesk` turns ``apply_perturbation`` and
``reset_scene`` requests into prompts built from the catalog's natural-language text, publishes
them, and blocks until the operator answers (done / skip / abort) or the prompt times out:

======================  ===============================  =================================
answer                  apply_perturbation               reset_scene
======================  ===============================  =================================
done                    applied; the scene is now that   success; the scene is nominal
skip                    unavailable (never a failure)    failure ("operator skipped")
abort                   aborted; the desk stays aborted  failure; the desk stays aborted
no answer (timeout)     aborted (scene state unknown)    failure (scene state unknown)
======================  ===============================  =================================

Only the physical part of each perturbation is asked for (:func:`robomd_diagnoser.digital.split`):
a space member's digital levels (image corruptions, action noise) are the policy executor's and
need nobody. Requests that need no physical change are answered at once: applying a list whose
physical part the scene already shows (e.g. digital levels only), and resetting a nominal scene in
which no rollout ran since the last reset. With an automatic reset
(:meth:`OperatorDesk.reset_automatically`), a scene whose physical part is nominal is restored
without a person when the caller's ``restore`` (the executor's place-back and scene check)
succeeds; otherwise the operator is asked as before.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from robomd_diagnoser.catalog import Catalog
from robomd_diagnoser.digital import split


class Answer(StrEnum):
    """What the operator answered (or that nobody did)."""

    DONE = "done"
    SKIP = "skip"
    ABORT = "abort"
    TIMEOUT = "timeout"


class PromptKind(StrEnum):
    """What a prompt asks for."""

    APPLY = "apply"
    RESET = "reset"


class ApplyStatus(StrEnum):
    """Outcome of an apply request (maps to ApplyPerturbation's STATUS_*)."""

    APPLIED = "applied"
    UNAVAILABLE = "unavailable"
    REJECTED = "rejected"
    ABORTED = "aborted"


@dataclass(frozen=True)
class Prompt:
    """One question to the operator.

    :param prompt_id: answer with this id.
    :param kind: apply or reset.
    :param instruction: what to do, in words.
    :param perturbations: the full cumulative list the scene must show afterwards (physical
        parts only).
    :param timeout_s: seconds before it expires (0: never).
    """

    prompt_id: str
    kind: PromptKind
    instruction: str
    perturbations: tuple[str, ...]
    timeout_s: float


def apply_instruction(catalog: Catalog, current: Sequence[str], wanted: Sequence[str]) -> str:
    """Tell the operator how to go from the ``current`` scene to ``wanted`` (catalog texts)."""
    lines = []
    undo = [n for n in current if n not in wanted]
    do = [n for n in wanted if n not in current]
    if undo:
        lines.append("Undo: " + "; ".join(catalog[n].text for n in undo) + ".")
    if do:
        lines.append("Do: " + "; ".join(catalog[n].text for n in do) + ".")
    scene = "; ".join(catalog[n].text for n in wanted) or "nominal (no changes)"
    lines.append(f"The scene must then show: {scene}. Keep the object at its start position.")
    return "\n".join(lines)


def reset_instruction(catalog: Catalog, current: Sequence[str], arm_note: str) -> str:
    """Tell the operator how to restore the nominal scene."""
    lines = []
    if current:
        lines.append("Undo: " + "; ".join(catalog[n].text for n in current) + ".")
    lines.append("Put the object back at its start position and clear the workspace.")
    if arm_note:
        lines.append(arm_note)
    return "\n".join(lines)


class OperatorDesk:
    """Prompts, answers and the scene's state as the operator left it.

    :param catalog: the catalog whose texts make the instructions.
    :param publish: called with every new prompt (and with None when it is settled).
    :param timeout_s: seconds each prompt waits (0: forever).
    :param clock: monotonic clock.
    """

    def __init__(self, catalog: Catalog, publish: Callable[[Prompt | None], None],
                 timeout_s: float = 600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.catalog = catalog
        self.publish = publish
        self.timeout_s = timeout_s
        self.clock = clock
        self.scene: tuple[str, ...] = ()  # physical parts, as the operator left the scene
        self.aborted = False
        self.dirty = True  # the scene's state is unknown until the first reset
        self.confirmed = False  # the operator has reset the scene at least once
        self.resets = {"automatic": 0, "operator": 0}
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self._pending: Prompt | None = None
        self._answer: tuple[Answer, str] | None = None

    @property
    def pending(self) -> Prompt | None:
        """The prompt waiting for an answer, if any."""
        return self._pending

    def rollout_started(self) -> None:
        """A rollout ran: the object moved, so the next reset needs the operator."""
        self.dirty = True

    def respond(self, prompt_id: str, answer: Answer, note: str = "") -> tuple[bool, str]:
        """Answer the pending prompt (any thread).

        :return: (accepted, message); not accepted for an unknown or expired prompt id.
        """
        with self._cond:
            if self._pending is None or self._pending.prompt_id != prompt_id:
                waiting = self._pending.prompt_id if self._pending else "none"
                return False, f"prompt {prompt_id!r} is not pending (pending: {waiting})"
            if answer == Answer.TIMEOUT:
                return False, "answer done, skip or abort"
            self._answer = (answer, note)
            self._cond.notify_all()
        return True, f"{answer.value} recorded for prompt {prompt_id}"

    def _ask(self, kind: PromptKind, instruction: str,
             perturbations: Sequence[str]) -> tuple[Answer, str]:
        with self._cond:
            prompt = Prompt(f"p{next(self._ids)}", kind, instruction, tuple(perturbations),
                            self.timeout_s)
            self._pending, self._answer = prompt, None
        self.publish(prompt)
        deadline = self.clock() + self.timeout_s if self.timeout_s > 0 else None
        with self._cond:
            while self._answer is None:
                left = None if deadline is None else deadline - self.clock()
                if left is not None and left <= 0:
                    self._answer = (Answer.TIMEOUT, "")
                    break
                self._cond.wait(left if left is None else min(left, 1.0))
            answer, self._pending = self._answer, None
        self.publish(None)
        if answer[0] == Answer.ABORT:
            self.aborted = True
        return answer

    def apply(self, wanted: Sequence[str],
              on_done: Callable[[Sequence[str]], None] | None = None) -> tuple[ApplyStatus, str]:
        """Have the operator make the scene show exactly the physical part of ``wanted``
        (blocks); its digital levels are left to the caller.

        :param wanted: catalog names, the cumulative list.
        :param on_done: called with the physical part once the operator confirmed (e.g. a fake
            scene).
        """
        unknown = [n for n in wanted if n not in self.catalog]
        if unknown:
            return ApplyStatus.REJECTED, (f"unknown perturbation(s) {unknown} for catalog "
                                          f"{self.catalog.source}")
        if self.aborted:
            return ApplyStatus.ABORTED, "the operator aborted the campaign"
        physical = tuple(dict.fromkeys(
            name for name in (split(self.catalog[n])[0] for n in wanted) if name))
        if physical == self.scene:
            return ApplyStatus.APPLIED, "the scene already shows this"
        answer, note = self._ask(PromptKind.APPLY,
                                 apply_instruction(self.catalog, self.scene, physical), physical)
        suffix = f" ({note})" if note else ""
        if answer == Answer.DONE:
            self.scene = physical
            if on_done is not None:
                on_done(list(physical))
            return ApplyStatus.APPLIED, "operator confirmed: " + (", ".join(physical) or
                                                                  "nominal scene") + suffix
        if answer == Answer.SKIP:
            return ApplyStatus.UNAVAILABLE, f"operator skipped {list(physical)}{suffix}"
        if answer == Answer.ABORT:
            return ApplyStatus.ABORTED, f"operator aborted the campaign{suffix}"
        self.dirty = True
        return ApplyStatus.ABORTED, (f"no operator answer within {self.timeout_s:.0f} s; is the "
                                     "operator console (robomd operator) running?")

    def reset_automatically(self, restore: Callable[[], tuple[bool, str]]) -> tuple[bool, str]:
        """Restore the nominal scene without a person, if it needs no physical change.

        Tried only once the operator has confirmed a nominal scene, when the scene shows no
        physical change and a rollout ran since the last reset (else there is nothing to undo).

        :param restore: puts the object back and checks the scene: (restored, what happened).
        :return: (restored, message); not restored: ask the operator (:meth:`reset`).
        """
        if self.aborted:
            return False, "the operator aborted the campaign"
        if self.scene:
            return False, f"the scene shows physical changes {list(self.scene)}"
        if not self.confirmed:
            return False, "no operator has confirmed the nominal scene yet"
        if not self.dirty:
            return True, "the scene is already nominal"
        restored, how = restore()
        if not restored:
            return False, how
        self.dirty = False
        self.resets["automatic"] += 1
        return True, f"automatic reset ({self.tally()}): {how}"

    def tally(self) -> str:
        """How many resets were automatic and how many the operator's."""
        return (f"{self.resets['automatic']} automatic, {self.resets['operator']} by the "
                "operator so far")

    def reset(self, arm_note: str = "",
              on_done: Callable[[], None] | None = None) -> tuple[bool, str]:
        """Have the operator restore the nominal scene (blocks).

        :param arm_note: a line for the operator about the arm (e.g. it could not be homed).
        :param on_done: called once the operator confirmed.
        """
        if self.aborted:
            return False, "the operator aborted the campaign"
        if not self.scene and not self.dirty:
            return True, "the scene is already nominal"
        answer, note = self._ask(PromptKind.RESET,
                                 reset_instruction(self.catalog, self.scene, arm_note), ())
        suffix = f" ({note})" if note else ""
        if answer == Answer.DONE:
            self.scene, self.dirty, self.confirmed = (), False, True
            self.resets["operator"] += 1
            if on_done is not None:
                on_done()
            return True, f"operator restored the nominal scene ({self.tally()})" + suffix
        if answer == Answer.SKIP:
            return False, "operator skipped the reset" + suffix
        if answer == Answer.ABORT:
            return False, "operator aborted the campaign" + suffix
        return False, (f"no operator answer within {self.timeout_s:.0f} s; is the operator "
                       "console (robomd operator) running?")
