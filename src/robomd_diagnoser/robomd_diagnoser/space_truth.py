"""Ground truths over a space's members: per-member failure counts, read from JSON or made up.

File shape (``config/ground_truth/*.json``)::

    {"space": "lift_state_physical",
     "members": [{"name": "mass_x2+friction_low", "levels": [["mass", "x2"], ["friction", "low"]],
                  "failures": 3, "trials": 5}, ...],
     "command": "how it was built"}

A member's name is its levels' names joined by ``+``; ``levels`` are (family, level) pairs.
A sweep's ``failure_rates.json`` (``robomd sweep``, e.g. ``config/ground_truth/lift_bc.json``) is
read too: each perturbation becomes a one-level member of its own family.

:func:`synthetic_truth` builds a **synthetic** ground truth with a known factor structure (main
effects and a few pair interactions) for tests and for measuring the bench before real ground
truths exist; its ``space`` name starts with ``synthetic``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

Levels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class MemberTruth:
    """One member's measured outcome.

    :param name: stable name (levels joined by ``+``).
    :param levels: (family, level) pairs.
    :param failures: failed rollouts.
    :param trials: judged rollouts.
    """

    name: str
    levels: Levels
    failures: int
    trials: int

    @property
    def rate(self) -> float:
        """The measured failure rate (the true rate when replayed)."""
        return self.failures / self.trials


@dataclass(frozen=True)
class SpaceTruth:
    """A ground truth over a space.

    :param space: the space's name.
    :param members: every member, in file order.
    :param command: how it was built.
    :param source: the file read (or ``<synthetic>``).
    """

    space: str
    members: tuple[MemberTruth, ...]
    command: str
    source: str

    @property
    def rates(self) -> np.ndarray:
        """True rate per member."""
        return np.array([m.rate for m in self.members])

    @property
    def levels(self) -> list[Levels]:
        """Levels per member."""
        return [m.levels for m in self.members]

    def to_dict(self) -> dict[str, Any]:
        return {"space": self.space, "command": self.command, "members": [
            {"name": m.name, "levels": [list(lv) for lv in m.levels], "failures": m.failures,
             "trials": m.trials} for m in self.members]}


def _member(row: Any, where: str) -> MemberTruth:
    if not isinstance(row, dict):
        raise ValueError(f"{where}: expected a mapping with name, levels, failures, trials")
    name, levels = row.get("name"), row.get("levels")
    k, n = row.get("failures"), row.get("trials")
    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}.name: a non-empty string is required")
    if (not isinstance(levels, list) or not levels
            or not all(isinstance(lv, list) and len(lv) == 2
                       and all(isinstance(x, str) and x for x in lv) for lv in levels)):
        raise ValueError(f"{where}.levels: a non-empty list of [family, level] string pairs, "
                         f"got {levels!r}")
    if not (isinstance(k, int) and isinstance(n, int) and 0 <= k <= n and n > 0):
        raise ValueError(f"{where}: failures and trials must be integers with "
                         f"0 <= failures <= trials and trials > 0, got {k!r}/{n!r}")
    return MemberTruth(name, tuple((f, lv) for f, lv in levels), k, n)


def load_space_truth(path: str | Path) -> SpaceTruth:
    """Read a space ground truth, or a sweep's ``failure_rates.json`` (see the module doc).

    :param path: the JSON file.
    :raises ValueError: naming the bad field.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"ground truth {path} does not exist")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object with 'members' (or a sweep's "
                         "'perturbations')")
    if "members" in data:
        rows = data["members"]
        if not isinstance(rows, list) or not rows:
            raise ValueError(f"{path}: 'members' must be a non-empty list")
        members = tuple(_member(r, f"{path}: members[{i}]") for i, r in enumerate(rows))
        space, command = str(data.get("space", path.stem)), str(data.get("command", ""))
    elif isinstance(data.get("perturbations"), list) and data["perturbations"]:
        members = []
        for i, row in enumerate(data["perturbations"]):
            where = f"{path}: perturbations[{i}]"
            if not isinstance(row, dict) or not isinstance(row.get("name"), str):
                raise ValueError(f"{where}: needs a name, n and failures")
            levels = row.get("levels") or [[row["name"], row["name"]]]  # a space's member
            members.append(_member({"name": row["name"], "levels": levels,
                                    "failures": row.get("failures"), "trials": row.get("n")},
                                   where))
        members = tuple(members)
        space = f"{data.get('task', path.stem)} catalog (sweep)"
        command = f"robomd sweep --task {data.get('task')} --policy {data.get('policy')} " \
                  f"--rollouts {data.get('rollouts')}"
    else:
        raise ValueError(f"{path}: expected 'members' (a space ground truth) or "
                         "'perturbations' (a sweep's failure_rates.json)")
    names = [m.name for m in members]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"{path}: member name {dup!r} appears twice; names must be unique")
    return SpaceTruth(space, members, command, str(path))


def synthetic_truth(families: int = 9, levels: int = 8, *, bad_levels: int = 1,
                    mild_families: int = 3, interactions: int = 20, trials: int = 10,
                    seed: int = 0) -> SpaceTruth:
    """A synthetic ground truth with a known factor structure (never a measurement).

    Members: every single level and every pair of levels from two different families. True
    failure logit = -5 (nominal) + the sum of its levels' effects + its interaction, if any.
    Per family, ``bad_levels`` levels have effects in [8, 11] (members with one fail almost
    always); in the first ``mild_families`` families one level has an effect in [3, 4] (rates in
    between, mostly below one half); the other levels have effects in [-1, 1] (rates near 0).
    ``interactions`` pairs of ordinary levels get +9: they fail where neither single does.
    Counts are ``trials`` Bernoulli draws at the true rate.

    :param families: factor families.
    :param levels: levels per family.
    :param bad_levels: strongly failing levels per family.
    :param mild_families: families with one moderately failing level.
    :param interactions: failing pairs of ordinary levels.
    :param trials: draws per member.
    :param seed: seeds everything.
    """
    if bad_levels + 1 > levels or mild_families > families:
        raise ValueError("need bad_levels + 1 <= levels and mild_families <= families")
    rng = np.random.default_rng(seed)
    effect: dict[tuple[str, str], float] = {}
    plain: list[tuple[str, str]] = []
    for f in range(families):
        fam = f"f{f}"
        mild = int(f < mild_families)
        kinds = rng.permutation(["bad"] * bad_levels + ["mild"] * mild
                                + ["plain"] * (levels - bad_levels - mild))
        for j, kind in enumerate(kinds):
            lv = (fam, f"{fam}_l{j}")
            low, high = {"bad": (8.0, 11.0), "mild": (3.0, 4.0), "plain": (-1.0, 1.0)}[kind]
            effect[lv] = float(rng.uniform(low, high))
            if kind == "plain":
                plain.append(lv)
    singles = [(lv,) for lv in effect]
    pairs = [(a, b) for a, b in combinations(effect, 2) if a[0] != b[0]]
    plain_set = set(plain)
    candidates = [p for p in pairs if p[0] in plain_set and p[1] in plain_set]
    chosen = {candidates[i] for i in rng.choice(len(candidates), interactions, replace=False)}
    members = []
    for lvs in singles + pairs:
        logit = -5.0 + sum(effect[lv] for lv in lvs) + (9.0 if lvs in chosen else 0.0)
        rate = 1.0 / (1.0 + np.exp(-logit))
        k = int(rng.binomial(trials, rate))
        members.append(MemberTruth("+".join(lv for _, lv in lvs), tuple(lvs), k, trials))
    return SpaceTruth(f"synthetic_{families}x{levels}_seed{seed}", tuple(members),
                      f"synthetic_truth(families={families}, levels={levels}, "
                      f"bad_levels={bad_levels}, mild_families={mild_families}, "
                      f"interactions={interactions}, trials={trials}, seed={seed})",
                      "<synthetic>")
