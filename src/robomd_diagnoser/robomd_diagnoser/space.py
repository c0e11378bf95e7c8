"""Perturbation spaces: factor families, their levels and combinations, enumerated lazily.

A catalog may declare ``families`` besides its single ``perturbations``. A family varies one
*factor* (:data:`FACTORS`) of one target over a list of levels; a space is every level of every
family (order 1) plus combinations of levels of distinct families up to ``combinations.order``::

    families:
      - name: cube_hue
        factor: object_color
        target: cube
        hue: {start: 0, stop: 330, num: 12}     # or hue: [0, 60, ...]; saturation/value optional
      - name: table_color
        factor: table_color
        values: [[1, 0, 0], [0, 0, 1]]
        names: [red, blue]
      - name: light_intensity
        factor: light_intensity
        linspace: {start: 0.2, stop: 2.0, num: 5}
    combinations: {order: 2}                     # families: [...] restricts who combines

A level's name is made from its value (``120``, ``0p2``, ``m0p05_0``) unless ``names`` gives it;
a member's name is ``<family>_<level>`` joined by ``+`` in family order, e.g.
``cube_hue_120+table_color_red``, and its text joins the levels' generated texts.

Members have stable indices: order 1 first, then pairs, then triples; within an order, family
combinations in lexicographic order of family position; within a combination, levels in
mixed-radix order (the last family varies fastest). ``index <-> member`` is arithmetic over the
family combinations; no list of members is ever built.
"""

from __future__ import annotations

import bisect
import colorsys
import itertools
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from robomd_diagnoser.perturbation import CatalogError, Perturbation

_NAME_RE = re.compile(r"^[a-z0-9_]+$")
#: Kind of the :class:`Perturbation` a space member becomes.
MEMBER_KIND = "factors"


@dataclass(frozen=True)
class Factor:
    """One kind of scene change a family may vary.

    :param name: factor name used in catalogs.
    :param size: numbers per level value (0: the value is a name, e.g. a texture).
    :param lo: smallest physically meaningful number (every component).
    :param hi: largest physically meaningful number.
    :param digital: applied to the software pipeline (image, action) rather than the scene; on a
        real robot a digital level needs no operator.
    :param target: fixed target, or None if the family names one (an object).
    :param text: level value (string) and target -> natural-language text.
    :param color: the value is a colour (RGBA), given as ``values`` or ``hue``.
    :param broadcast: a single number stands for all ``size`` components.
    """

    name: str
    size: int
    lo: float
    hi: float
    digital: bool
    target: str | None
    text: Callable[[str, str], str]
    color: bool = False
    broadcast: bool = False


def _t(template: str) -> Callable[[str, str], str]:
    return lambda value, target: template.format(v=value, t=target.replace("_", " "))


#: Every factor a family may vary. Ranges bound what a physical scene can take.
FACTORS: dict[str, Factor] = {f.name: f for f in (
    Factor("object_color", 4, 0.0, 1.0, False, None, _t("Change {t} color to {v}"), color=True),
    Factor("table_color", 4, 0.0, 1.0, False, "table", _t("Change table color to {v}"),
           color=True),
    Factor("robot_color", 4, 0.0, 1.0, False, "robot", _t("Change robot color to {v}"),
           color=True),
    Factor("light_color", 3, 0.0, 1.0, False, "light", _t("Change lighting color to {v}"),
           color=True),
    Factor("table_texture", 0, 0.0, 0.0, False, "table", _t("Change table texture to {v}")),
    Factor("light_intensity", 1, 0.0, 3.0, False, "light",
           _t("Scale light intensity by {v}")),
    Factor("light_direction", 2, -60.0, 60.0, False, "light",
           _t("Tilt the light by {v} degrees (about x, y)")),
    Factor("camera_position", 3, -0.3, 0.3, False, "camera",
           _t("Move the camera by {v} m (x, y, z)")),
    Factor("camera_orientation", 3, -30.0, 30.0, False, "camera",
           _t("Rotate the camera by {v} degrees (roll, pitch, yaw)")),
    Factor("object_position", 2, -0.15, 0.15, False, None,
           _t("Shift the {t} start position by {v} m (x, y)")),
    Factor("object_yaw", 1, -180.0, 180.0, False, None,
           _t("Rotate the {t} start pose by {v} degrees about the vertical")),
    Factor("object_size", 3, 0.25, 3.0, False, None, _t("Scale the {t} by {v} (x, y, z)"),
           broadcast=True),
    Factor("object_mass", 1, 0.1, 20.0, False, None, _t("Scale the {t} mass by {v}")),
    Factor("object_friction", 1, 0.05, 5.0, False, None, _t("Scale the {t} friction by {v}")),
    Factor("distractors", 1, 1.0, 4.0, False, "scene",
           _t("Add {v} distractor objects beside the task object")),
    Factor("robot_joint_offset", 1, -0.5, 0.5, False, "robot",
           _t("Offset every robot start joint angle by {v} rad")),
    Factor("image_noise", 1, 0.0, 0.5, True, "image",
           _t("Add Gaussian image noise of std {v} (fraction of full scale)")),
    Factor("image_blur", 1, 0.0, 5.0, True, "image",
           _t("Blur the camera image with sigma {v} px")),
    Factor("image_brightness", 1, -0.8, 0.8, True, "image",
           _t("Change image brightness by {v} (fraction of full scale)")),
    Factor("image_contrast", 1, 0.0, 3.0, True, "image", _t("Scale image contrast by {v}")),
    Factor("action_noise", 1, 0.0, 1.0, True, "action",
           _t("Add Gaussian noise of std {v} to the policy's actions")),
)}


@dataclass(frozen=True)
class Level:
    """One level of one family: a concrete edit.

    :param family: the family's name.
    :param name: the level's name within the family (``120``, ``red``, ``0p5``).
    :param text: generated natural-language text.
    :param factor: the family's factor (a key of :data:`FACTORS`).
    :param target: what is changed (``cube``, ``table``, ``light``, ``camera``, ``image``...).
    :param value: numbers (colours as RGBA) or a name (textures).
    :param digital: see :attr:`Factor.digital`.
    """

    family: str
    name: str
    text: str
    factor: str
    target: str
    value: tuple[float, ...] | str
    digital: bool

    @property
    def full_name(self) -> str:
        """``<family>_<level>``, the name of the order-1 member."""
        return f"{self.family}_{self.name}"

    def to_dict(self) -> dict[str, Any]:
        value = self.value if isinstance(self.value, str) else list(self.value)
        return {"family": self.family, "level": self.name, "factor": self.factor,
                "target": self.target, "value": value, "digital": self.digital}


@dataclass(frozen=True)
class Family:
    """A factor of a target varied over levels."""

    name: str
    factor: str
    target: str
    levels: tuple[Level, ...]

    @property
    def digital(self) -> bool:
        return FACTORS[self.factor].digital


@dataclass(frozen=True)
class Member:
    """One element of a space: one level from each of 1..k distinct families.

    :param index: stable position in the space.
    :param name: level names joined by ``+`` in family order.
    :param text: the levels' texts joined.
    :param levels: ((family name, level name), ...).
    :param edits: the levels themselves, in the same order.
    """

    index: int
    name: str
    text: str
    levels: tuple[tuple[str, str], ...]
    edits: tuple[Level, ...]

    @property
    def order(self) -> int:
        return len(self.levels)

    def as_perturbation(self) -> Perturbation:
        """The member as a catalog entry (kind :data:`MEMBER_KIND`)."""
        targets = ",".join(dict.fromkeys(e.target for e in self.edits))
        return Perturbation(self.name, self.text, MEMBER_KIND, targets, (), self.levels,
                            self.edits)


def member_text(edits: tuple[Level, ...]) -> str:
    """Natural-language text of a combination: the level texts, the later ones lower-cased."""
    parts = [e.text for e in edits]
    return "; ".join([parts[0], *(p[0].lower() + p[1:] for p in parts[1:])])


class PerturbationSpace:
    """Families and their combinations up to ``order``, indexed lazily.

    :param families: in catalog order (which defines member order).
    :param order: largest number of families combined in one member.
    :param combine: positions of the families that take part in combinations (order >= 2);
        every family appears at order 1.
    """

    def __init__(self, families: tuple[Family, ...], order: int = 1,
                 combine: tuple[int, ...] | None = None) -> None:
        self.families = families
        self.order = order
        self.combine = tuple(range(len(families))) if combine is None else combine
        self._level_of = {lv.full_name: (fi, li) for fi, fam in enumerate(families)
                          for li, lv in enumerate(fam.levels)}
        # Family combinations by order, each with the cumulative member count before it.
        self._combos: list[tuple[int, ...]] = [(i,) for i in range(len(families))]
        for k in range(2, order + 1):
            self._combos += list(itertools.combinations(self.combine, k))
        self._combo_pos = {c: i for i, c in enumerate(self._combos)}
        self._starts: list[int] = []
        total = 0
        for combo in self._combos:
            self._starts.append(total)
            total += math.prod(len(families[f].levels) for f in combo)
        self._len = total

    def __len__(self) -> int:
        return self._len

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PerturbationSpace):
            return NotImplemented
        return (self.families, self.order, self.combine) == (other.families, other.order,
                                                              other.combine)

    def __hash__(self) -> int:
        return hash((self.families, self.order, self.combine))

    def __iter__(self) -> Iterator[Member]:
        return (self.member(i) for i in range(self._len))

    def size_by_order(self) -> dict[int, int]:
        """Member count of each order."""
        out: dict[int, int] = {}
        for combo, start, end in zip(self._combos, self._starts, [*self._starts[1:], self._len],
                                     strict=True):
            out[len(combo)] = out.get(len(combo), 0) + end - start
        return out

    def order_range(self, k: int) -> range:
        """Indices of the members of order ``k``."""
        first = [i for i, c in enumerate(self._combos) if len(c) == k]
        if not first:
            return range(0)
        end = self._starts[first[-1] + 1] if first[-1] + 1 < len(self._combos) else self._len
        return range(self._starts[first[0]], end)

    def member(self, index: int) -> Member:
        """The member at ``index`` (0 <= index < len).

        :raises IndexError: outside the space.
        """
        if not 0 <= index < self._len:
            raise IndexError(f"member index {index} is outside the space (0..{self._len - 1})")
        c = bisect.bisect_right(self._starts, index) - 1
        combo, rest = self._combos[c], index - self._starts[c]
        picks = []
        for f in reversed(combo):
            rest, li = divmod(rest, len(self.families[f].levels))
            picks.append(li)
        edits = tuple(self.families[f].levels[li] for f, li in zip(combo, reversed(picks),
                                                                   strict=True))
        return self._make(index, edits)

    def index_of(self, name: str) -> int | None:
        """The index of the member called ``name``, or None if there is none."""
        parts = name.split("+")
        try:
            found = [self._level_of[p] for p in parts]
        except KeyError:
            return None
        combo = tuple(f for f, _ in found)
        c = self._combo_pos.get(combo)
        if c is None:
            return None
        rest = 0
        for f, li in found:
            rest = rest * len(self.families[f].levels) + li
        return self._starts[c] + rest

    def member_by_name(self, name: str) -> Member:
        """The member called ``name`` (levels in family order, joined by ``+``).

        :raises KeyError: if no member has that name.
        """
        index = self.index_of(name)
        if index is None:
            raise KeyError(name)
        return self.member(index)

    def sample(self, n: int, seed: int = 0) -> list[int]:
        """``n`` member indices without repetition, spread over the orders: the orders take
        turns (as long as they have members left), and within an order the members come in a
        seeded pseudo-random permutation (:func:`_permuted`, no list of the order's members).

        Deterministic; the result for ``n`` is a prefix of the result for any larger ``n``, so a
        sample can grow and earlier members keep their place.
        """
        n = min(n, self._len)
        ranges = [r for r in (self.order_range(k) for k in range(1, self.order + 1)) if len(r)]
        taken = [0] * len(ranges)
        out: list[int] = []
        while len(out) < n:
            for k, r in enumerate(ranges):
                if len(out) == n or taken[k] == len(r):
                    continue
                out.append(r.start + _permuted(taken[k], len(r), _key(seed, k)))
                taken[k] += 1
        return out

    def _make(self, index: int, edits: tuple[Level, ...]) -> Member:
        return Member(index, "+".join(e.full_name for e in edits), member_text(edits),
                      tuple((e.family, e.name) for e in edits), edits)

    def describe(self) -> dict[str, Any]:
        """Families, levels, order and size (the ``robomd space describe`` JSON)."""
        return {
            "families": [{"name": f.name, "factor": f.factor, "target": f.target,
                          "digital": f.digital, "levels": [lv.name for lv in f.levels]}
                         for f in self.families],
            "order": self.order,
            "combined_families": [self.families[i].name for i in self.combine],
            "members": self._len,
            "members_by_order": {str(k): v for k, v in self.size_by_order().items()},
        }


_MASK64 = (1 << 64) - 1


def _key(seed: int, k: int) -> int:
    return _mix(seed & _MASK64, k, 0x5EED)


def _mix(value: int, key: int, salt: int) -> int:
    """A 64-bit integer hash (splitmix64 finaliser over value, key and salt)."""
    z = (value * 0x9E3779B97F4A7C15 + key * 0xBF58476D1CE4E5B9 + salt * 0x94D049BB133111EB
         + 1) & _MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def _permuted(i: int, n: int, key: int) -> int:
    """Position ``i`` of a keyed pseudo-random permutation of ``range(n)``: a 4-round Feistel
    network on the smallest even-bit domain that holds ``n``, cycle-walking back into range.
    A bijection, O(1) memory, the same in every process."""
    half = max(1, ((n - 1).bit_length() + 1) // 2)
    mask = (1 << half) - 1
    x = i
    while True:
        left, right = x >> half, x & mask
        for rnd in range(4):
            left, right = right, left ^ (_mix(right, key, rnd) & mask)
        x = (left << half) | right
        if x < n:
            return x


# ---------------------------------------------------------------------------- parsing


def _token(v: float) -> str:
    text = f"{v:.4g}" if abs(v) >= 1e-4 or v == 0 else f"{v:.2e}"
    return text.replace("-", "m").replace(".", "p").replace("+", "")


def _shown(value: tuple[float, ...] | str) -> str:
    if isinstance(value, str):
        return value
    if len(value) == 1:
        return f"{value[0]:g}"
    return "(" + ", ".join(f"{v:g}" for v in value) + ")"


def _numbers(raw: Any, where: str) -> list[float]:
    if isinstance(raw, dict):
        keys = {"start", "stop", "num"}
        if set(raw) != keys:
            raise CatalogError(f"{where}: a linspace is {{start: A, stop: B, num: N}}, got "
                               f"{raw!r}")
        num = raw["num"]
        if not isinstance(num, int) or isinstance(num, bool) or num < 1:
            raise CatalogError(f"{where}.num: the number of levels must be an integer >= 1, got "
                               f"{num!r}; an empty range has no levels")
        start, stop = float(raw["start"]), float(raw["stop"])
        return [start] if num == 1 else [start + (stop - start) * i / (num - 1)
                                         for i in range(num)]
    if not isinstance(raw, list) or not raw:
        raise CatalogError(f"{where}: give a non-empty list of levels or {{start, stop, num}}; "
                           f"got {raw!r} (an empty range has no levels)")
    return raw


def _levels(entry: dict, factor: Factor, fam: str, target: str, where: str) -> tuple[Level, ...]:
    """The family's levels from ``values``, ``linspace`` or (colours) ``hue``."""
    sources = [k for k in ("values", "linspace", "hue") if k in entry]
    if len(sources) != 1:
        raise CatalogError(f"{where}: give exactly one of values, linspace"
                           f"{', hue' if factor.color else ''} for the levels, got "
                           f"{sources or 'none'}")
    source = sources[0]
    if source == "hue" and not factor.color:
        raise CatalogError(f"{where}.hue: only colour factors take hue; use values or linspace")
    raws = _numbers(entry[source], f"{where}.{source}")
    values: list[tuple[float, ...] | str] = []
    tokens: list[str] = []
    texts: list[str] = []
    for i, raw in enumerate(raws):
        at = f"{where}.{source}[{i}]"
        if source == "hue":
            sat, val = float(entry.get("saturation", 1.0)), float(entry.get("value", 1.0))
            if not (isinstance(raw, (int, float)) and 0.0 <= raw <= 360.0):
                raise CatalogError(f"{at}: a hue is a number of degrees in [0, 360], got {raw!r}")
            if not (0.0 <= sat <= 1.0 and 0.0 <= val <= 1.0):
                raise CatalogError(f"{where}: saturation and value must be in [0, 1]")
            rgb = colorsys.hsv_to_rgb((raw % 360.0) / 360.0, sat, val)
            values.append(tuple(round(c, 6) for c in rgb)[: factor.size] + (1.0,) *
                          (factor.size - 3))
            tokens.append(_token(float(raw)))
            texts.append(factor.text(f"hue {raw:g} degrees", target).replace(
                "color to hue", "hue to"))
            continue
        if factor.size == 0:
            if not isinstance(raw, str) or not re.match(r"^[A-Za-z0-9_]+$", raw):
                raise CatalogError(f"{at}: factor {factor.name} takes names ([A-Za-z0-9_]+), "
                                   f"got {raw!r}")
            values.append(raw)
            tokens.append(raw)
            continue
        nums = [raw] if isinstance(raw, (int, float)) else raw
        if not isinstance(nums, list) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in nums):
            raise CatalogError(f"{at}: factor {factor.name} takes numbers, got {raw!r}")
        vals = [float(v) for v in nums]
        if factor.color and len(vals) == 3 and factor.size == 4:
            vals.append(1.0)
        if factor.broadcast and len(vals) == 1:
            vals *= factor.size
        if len(vals) != factor.size:
            raise CatalogError(f"{at}: factor {factor.name} takes {factor.size} number(s) per "
                               f"level, got {raw!r}")
        bad = [v for v in vals if not factor.lo <= v <= factor.hi]
        if bad:
            raise CatalogError(f"{at}: {bad[0]:g} is outside the physical range "
                               f"[{factor.lo:g}, {factor.hi:g}] of factor {factor.name}; "
                               "pick levels inside it")
        values.append(tuple(vals))
        shown = nums if isinstance(raw, list) else [raw]
        tokens.append("_".join(_token(float(v)) for v in shown))
    names = entry.get("names")
    if names is not None:
        if not isinstance(names, list) or len(names) != len(values):
            raise CatalogError(f"{where}.names: give one name per level ({len(values)}), got "
                               f"{names!r}")
        tokens = names
    levels = []
    seen: set[str] = set()
    for i, (token, value) in enumerate(zip(tokens, values, strict=True)):
        if not isinstance(token, str) or not _NAME_RE.match(token):
            raise CatalogError(f"{where}.names[{i}]: use lower-case letters, digits and '_', got "
                               f"{token!r}")
        if token in seen:
            raise CatalogError(f"{where}: two levels are named {token!r}; give distinct names")
        seen.add(token)
        if texts:
            text = texts[i]
        else:
            named = names is not None and (factor.color or factor.size == 0)
            text = factor.text(token.replace("_", " ") if named else _shown(value), target)
        levels.append(Level(fam, token, text, factor.name, target, value, factor.digital))
    return tuple(levels)


_FAMILY_KEYS = {"name", "factor", "target", "values", "linspace", "hue", "saturation", "value",
                "names"}


def parse_family(entry: Any, where: str) -> Family:
    """Validate one ``families`` entry.

    :raises CatalogError: naming the entry (``families[2] (cube_hue)``) and the fix.
    """
    if not isinstance(entry, dict):
        raise CatalogError(f"{where}: each family is a mapping with name, factor and levels")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise CatalogError(f"{where}.name: use lower-case letters, digits and '_', got {name!r}")
    where = f"{where} ({name})"
    extra = set(entry) - _FAMILY_KEYS
    if extra:
        raise CatalogError(f"{where}: unknown field(s) {sorted(extra)}; allowed: "
                           f"{', '.join(sorted(_FAMILY_KEYS))}")
    factor_name = entry.get("factor")
    if factor_name not in FACTORS:
        raise CatalogError(f"{where}.factor: unknown factor {factor_name!r}; use one of "
                           f"{', '.join(FACTORS)}")
    factor = FACTORS[factor_name]
    target = entry.get("target", factor.target)
    if factor.target is None and not isinstance(target, str):
        raise CatalogError(f"{where}.target: factor {factor_name} needs the object it changes "
                           "(e.g. target: cube)")
    if factor.target is not None and target != factor.target:
        raise CatalogError(f"{where}.target: factor {factor_name} always changes "
                           f"{factor.target!r}; drop target")
    return Family(name, factor_name, target, _levels(entry, factor, name, target, where))


def parse_space(families_raw: Any, combinations: Any, source: str,
                reserved: set[str]) -> PerturbationSpace:
    """Validate ``families`` and ``combinations`` of a catalog and build its space.

    :param reserved: names of the catalog's single perturbations (a level may not reuse one).
    :raises CatalogError: naming the entry and the fix.
    """
    if not isinstance(families_raw, list) or not families_raw:
        raise CatalogError(f"{source}: 'families' must be a non-empty list")
    families = []
    names: set[str] = set()
    full: dict[str, str] = {}
    for i, entry in enumerate(families_raw):
        fam = parse_family(entry, f"{source}: families[{i}]")
        if fam.name in names:
            raise CatalogError(f"{source}: families[{i}].name: duplicate family {fam.name!r}")
        names.add(fam.name)
        for lv in fam.levels:
            clash = full.get(lv.full_name) or (lv.full_name in reserved and "perturbations")
            if clash:
                raise CatalogError(f"{source}: families[{i}] ({fam.name}): level name "
                                   f"{lv.full_name!r} is also defined by {clash}; rename one")
            full[lv.full_name] = f"family {fam.name}"
        families.append(fam)
    combinations = {"order": 1} if combinations is None else combinations
    where = f"{source}: combinations"
    if not isinstance(combinations, dict) or set(combinations) - {"order", "families"}:
        raise CatalogError(f"{where}: a mapping {{order: K, families: [names]}} (families "
                           "optional), got {combinations!r}")
    order = combinations.get("order", 1)
    if not isinstance(order, int) or isinstance(order, bool) or order < 1:
        raise CatalogError(f"{where}.order: an integer >= 1 (1 = no combinations), got {order!r}")
    pos = {f.name: i for i, f in enumerate(families)}
    listed = combinations.get("families", [f.name for f in families])
    if not isinstance(listed, list):
        raise CatalogError(f"{where}.families: a list of family names, got {listed!r}")
    unknown = [n for n in listed if n not in pos]
    if unknown:
        raise CatalogError(f"{where}.families: unknown famil(ies) {unknown}; known: "
                           f"{', '.join(pos)}")
    combine = sorted(pos[n] for n in listed)
    if order > 1:
        seen: dict[tuple[str, str], str] = {}
        for i in combine:
            f = families[i]
            key = (f.factor, f.target)
            if key in seen:
                what = ("is listed twice" if seen[key] == f.name else
                        f"and {seen[key]!r} both set {f.factor} of {f.target!r}")
                raise CatalogError(
                    f"{where}: family {f.name!r} {what}; a factor cannot be combined with "
                    "itself: list only one of them in combinations.families")
            seen[key] = f.name
        if order > len(combine):
            raise CatalogError(f"{where}.order: {order} exceeds the {len(combine)} families "
                               "that combine; lower it")
    return PerturbationSpace(tuple(families), order, tuple(combine))
