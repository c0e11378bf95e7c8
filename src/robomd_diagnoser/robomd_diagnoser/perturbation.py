"""One candidate environment change (:class:`Perturbation`) and the error a malformed catalog
raises: the types catalogs (:mod:`robomd_diagnoser.catalog`) and perturbation spaces
(:mod:`robomd_diagnoser.space`) are made of."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from robomd_diagnoser.space import Level


class CatalogError(ValueError):
    """A catalog file or entry is malformed; the message names the field and the fix."""


@dataclass(frozen=True)
class Perturbation:
    """One candidate environment change.

    :param name: unique identifier inside its catalog.
    :param text: natural-language description (operator prompt, embedding input).
    :param kind: one of :data:`robomd_diagnoser.catalog.KINDS`, or a space member's kind.
    :param target: what is changed (``cube``, ``table``, ``robot``, ``light``...).
    :param value: kind-specific value (tuple of floats, or an object name).
    :param levels: for a space member, ((family, level), ...); empty for a single entry.
    :param edits: for a space member, its levels (:class:`robomd_diagnoser.space.Level`).
    """

    name: str
    text: str
    kind: str
    target: str
    value: tuple[float, ...] | str
    levels: tuple[tuple[str, str], ...] = ()
    edits: tuple[Level, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        value = self.value if isinstance(self.value, str) else list(self.value)
        out = {"name": self.name, "text": self.text, "kind": self.kind, "target": self.target,
               "value": value}
        if self.edits:
            out["edits"] = [e.to_dict() for e in self.edits]
        return out
