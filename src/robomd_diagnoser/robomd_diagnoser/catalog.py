"""Perturbation catalogs: the candidate set C of the paper, one YAML file per task.

A catalog is read by the sim bridge (to edit the MuJoCo model), the operator prompt (to tell a
person what to change) and the embedding (the natural-language text), so it is defined here once.

YAML layout::

    task: lift
    world: sim                 # sim | real
    perturbations:
      - name: cube_red         # unique identifier, [a-z0-9_]+
        text: Change cube color to red
        kind: color            # one of KINDS
        target: cube           # what is changed; the world decides which targets it knows
        value: [1.0, 0.0, 0.0, 1.0]

Value shapes by kind:
    color  -- RGBA, 4 numbers in [0, 1] (3 numbers are taken as RGB with alpha 1)
    light  -- RGB diffuse colour, 3 numbers in [0, 1]; target is ``light``
    size   -- MuJoCo half-sizes (x, y, z) in metres, 3 numbers in (0, 1] (the paper's
              "Resize cube to (0.04, 0.04, 0.04)" is half-sizes, i.e. an 8 cm cube)
    object -- the name of the object that replaces ``target`` (a string)

A catalog may also declare ``families`` and ``combinations`` (see :mod:`robomd_diagnoser.space`):
their members follow the single entries in index order, and ``catalog[name]`` resolves a member
name (``cube_hue_120+table_color_red``) to a :class:`Perturbation` of kind ``factors`` whose
``edits`` are the levels, without listing the space.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from robomd_diagnoser.perturbation import CatalogError, Perturbation

if TYPE_CHECKING:
    from robomd_diagnoser.space import PerturbationSpace

KINDS = ("color", "light", "size", "object")
#: Largest half-size a ``size`` perturbation may give, in metres (a 2 m object on a table).
MAX_HALF_SIZE = 1.0
WORLDS = ("sim", "real")
_NAME_RE = re.compile(r"^[a-z0-9_]+$")


@dataclass(frozen=True)
class Catalog:
    """An ordered set of perturbations for one task; the order defines the action indices.

    The single ``perturbations`` come first, then the members of ``space`` (if any), enumerated
    lazily: ``len``, ``catalog[i]``, ``catalog[name]`` and :meth:`index` never list the space.
    """

    task: str
    perturbations: tuple[Perturbation, ...]
    world: str = "sim"
    source: str = "<memory>"
    space: PerturbationSpace | None = None
    #: The catalog's ``families``/``combinations`` as written (the space's content, for
    #: comparing stored settings); None without a space.
    space_source: dict[str, Any] | None = field(default=None, compare=False)
    _by_name: dict[str, Perturbation] = field(default_factory=dict, init=False, repr=False,
                                              compare=False)
    _index: dict[str, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_name.update({p.name: p for p in self.perturbations})
        self._index.update({p.name: i for i, p in enumerate(self.perturbations)})

    def __len__(self) -> int:
        return len(self.perturbations) + (len(self.space) if self.space is not None else 0)

    def __iter__(self):
        yield from self.perturbations
        if self.space is not None:
            for member in self.space:
                yield member.as_perturbation()

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._find(name) is not None

    def __getitem__(self, key: int | str) -> Perturbation:
        if isinstance(key, str):
            found = self._find(key)
            if found is None:
                known = (", ".join(self.names) if len(self) <= 100 else
                         f"{len(self)} names; `robomd space describe {self.source}` lists the "
                         "families")
                raise CatalogError(
                    f"unknown perturbation {key!r} in catalog {self.source} (task {self.task}); "
                    f"known: {known}")
            return found
        singles = len(self.perturbations)
        if key < 0:
            key += len(self)
        if key < singles or self.space is None:
            return self.perturbations[key]
        return self.space.member(key - singles).as_perturbation()

    @property
    def names(self) -> list[str]:
        """Every name in index order (lists the whole space: use on small catalogs only)."""
        return [p.name for p in self]

    def member_levels(self) -> list[tuple[tuple[str, str], ...]]:
        """Each entry's (family, level) pairs in index order; a single entry is a one-level
        member of its own family. Lists the whole space: use on campaign-sized catalogs."""
        return [p.levels or ((p.name, p.name),) for p in self]

    def index(self, name: str) -> int:
        """The index of ``name``; raises CatalogError for an unknown name."""
        if name in self._index:
            return self._index[name]
        found = self.space.index_of(name) if self.space is not None else None
        if found is None:
            self[name]  # raises, naming the catalog
        return len(self.perturbations) + found

    def subset(self, names: list[str]) -> Catalog:
        """A catalog with only ``names`` (in that order); unknown names raise CatalogError."""
        return Catalog(self.task, tuple(self[n] for n in names), self.world, self.source)

    def _find(self, name: str) -> Perturbation | None:
        single = self._by_name.get(name)
        if single is not None or self.space is None:
            return single
        index = self.space.index_of(name)
        return None if index is None else self.space.member(index).as_perturbation()


def _value(kind: str, raw: Any, where: str) -> tuple[float, ...] | str:
    if kind == "object":
        if not isinstance(raw, str) or not raw:
            raise CatalogError(f"{where}.value: kind 'object' needs the replacement object's name "
                               f"as a string, got {raw!r}")
        return raw
    if not isinstance(raw, (list, tuple)) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in raw):
        raise CatalogError(f"{where}.value: kind {kind!r} needs a list of numbers, got {raw!r}")
    vals = tuple(float(v) for v in raw)
    if kind == "color":
        if len(vals) == 3:
            vals = vals + (1.0,)
        if len(vals) != 4 or not all(0.0 <= v <= 1.0 for v in vals):
            raise CatalogError(f"{where}.value: a colour is [r, g, b] or [r, g, b, a] with each "
                               f"in [0, 1], got {raw!r}")
    elif kind == "light":
        if len(vals) != 3 or not all(0.0 <= v <= 1.0 for v in vals):
            raise CatalogError(f"{where}.value: a light colour is [r, g, b] with each in [0, 1], "
                               f"got {raw!r}")
    elif kind == "size":
        if len(vals) != 3 or not all(0.0 < v <= MAX_HALF_SIZE for v in vals):
            raise CatalogError(f"{where}.value: a size is three positive half-sizes [x, y, z] in "
                               f"metres, each at most {MAX_HALF_SIZE}, got {raw!r}")
    return vals


def parse_catalog(data: Any, source: str = "<memory>") -> Catalog:
    """Validate a parsed YAML document and build a :class:`Catalog`.

    :raises CatalogError: naming the offending field (``perturbations[3].kind``...) and the fix.
    """
    if not isinstance(data, dict):
        raise CatalogError(f"{source}: a catalog is a mapping with keys task, perturbations")
    unknown = set(data) - {"task", "world", "description", "perturbations", "families",
                           "combinations"}
    if unknown:
        raise CatalogError(f"{source}: unknown top-level key(s) {sorted(unknown)}; allowed: "
                           "task, world, description, perturbations, families, combinations")
    task = data.get("task")
    if not isinstance(task, str) or not task:
        raise CatalogError(f"{source}: 'task' must be a non-empty string (e.g. task: lift)")
    world = data.get("world", "sim")
    if world not in WORLDS:
        raise CatalogError(f"{source}: 'world' must be one of {WORLDS}, got {world!r}")
    entries = data.get("perturbations", [] if "families" in data else None)
    if not isinstance(entries, list) or not (entries or "families" in data):
        raise CatalogError(f"{source}: 'perturbations' must be a non-empty list (or give "
                           "'families')")
    if "combinations" in data and "families" not in data:
        raise CatalogError(f"{source}: 'combinations' needs 'families' to combine")
    perts: list[Perturbation] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        where = f"{source}: perturbations[{i}]"
        if not isinstance(entry, dict):
            raise CatalogError(f"{where}: each perturbation is a mapping with name, text, kind, "
                               "target, value")
        missing = [k for k in ("name", "text", "kind", "target", "value") if k not in entry]
        if missing:
            raise CatalogError(f"{where}: missing field(s) {missing}")
        extra = set(entry) - {"name", "text", "kind", "target", "value"}
        if extra:
            raise CatalogError(f"{where}: unknown field(s) {sorted(extra)}")
        name = entry["name"]
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise CatalogError(f"{where}.name: use lower-case letters, digits and '_', "
                               f"got {name!r}")
        if name in seen:
            raise CatalogError(f"{where}.name: duplicate name {name!r}; names must be unique")
        seen.add(name)
        if entry["kind"] not in KINDS:
            raise CatalogError(f"{where}.kind: unknown kind {entry['kind']!r}; use one of {KINDS}")
        if not isinstance(entry["text"], str) or not entry["text"].strip():
            raise CatalogError(f"{where}.text: a non-empty description is required")
        if not isinstance(entry["target"], str) or not entry["target"]:
            raise CatalogError(f"{where}.target: a non-empty string is required")
        perts.append(Perturbation(name, entry["text"].strip(), entry["kind"], entry["target"],
                                  _value(entry["kind"], entry["value"], where)))
    if "families" not in data:
        return Catalog(task, tuple(perts), world, source)
    from robomd_diagnoser.space import parse_space

    space = parse_space(data["families"], data.get("combinations"), source, seen)
    space_source = {"families": data["families"], "combinations": data.get("combinations")}
    return Catalog(task, tuple(perts), world, source, space, space_source)


def load_catalog(path: str | Path) -> Catalog:
    """Load and validate a catalog YAML file.

    :raises CatalogError: if the file is missing, is not YAML, or fails validation.
    """
    path = Path(path)
    if not path.is_file():
        raise CatalogError(f"catalog file {path} does not exist; catalogs live in config/catalogs/")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise CatalogError(f"{path}: not a text (UTF-8) file ({exc.reason} at byte {exc.start}); "
                           "a catalog is a YAML file") from None
    return parse_catalog(data, str(path))
