"""Plug-ins: what other packages of the suite (or a user's) add, found through entry points.

``robomd_diagnoser`` imports no sibling package. Each package declares what it offers in its own
``setup.py`` under these entry-point groups, and the core looks it up here by name:

``robomd.worlds``
    world type (a campaign's ``world.type``) -> ``build(settings: WorldSettings) -> World``
``robomd.policies``
    policy-spec kind (``kind`` or ``kind:arg``) -> ``make(arg: str, world: World | None) ->
    RolloutPolicy``
``robomd.weights``
    ``<kind>.<task>`` -> ``weights() -> Path``: the weights a package ships for a policy kind and
    task (spec ``bc`` alone is ``bc.<the world's task>``)
``robomd.demonstrators``
    world type -> ``collect(catalog_path, perturbations, n, root, *, noise, horizon,
    camera_size, robot, workers, seed, log)``: expert demonstrations in that world (fine-tuning);
    returns a summary with ``saved``, ``files`` and ``directory``
``robomd.commands``
    ``robomd`` subcommand -> a module with ``register(subparsers)``
``robomd.bench``
    ``robomd bench`` benchmark -> a module with ``register(bench_subparsers)``
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

WORLDS = "robomd.worlds"
POLICIES = "robomd.policies"
WEIGHTS = "robomd.weights"
DEMONSTRATORS = "robomd.demonstrators"
COMMANDS = "robomd.commands"
BENCH = "robomd.bench"


class PluginError(LookupError):
    """A named plug-in is not installed; the message lists what is."""


def _entries(group: str) -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for ep in entry_points(group=group):
        found.setdefault(ep.name, ep)  # the first distribution on the path wins, as for imports
    return found


def names(group: str) -> list[str]:
    """The names installed in ``group``, sorted."""
    return sorted(_entries(group))


def load(group: str, name: str, what: str) -> Any:
    """The object registered as ``name`` in ``group``.

    :param group: the entry-point group (one of the constants above).
    :param name: the registered name.
    :param what: what a name of this group is, for the message (``world type``...).
    :raises PluginError: if nothing is registered under ``name``; the message lists what is.
    """
    entries = _entries(group)
    if name not in entries:
        installed = ", ".join(sorted(entries)) or "none"
        raise PluginError(f"unknown {what} {name!r}; installed: {installed} (a package adds one "
                          f"under the entry-point group {group!r})")
    return entries[name].load()


def load_all(group: str) -> list[tuple[str, Any]]:
    """Every ``(name, object)`` of ``group``: this package's first, then by package and name."""
    eps = list(entry_points(group=group))
    eps.sort(key=lambda ep: (ep.dist is None or ep.dist.name != "robomd_diagnoser",
                             ep.dist.name if ep.dist else "", ep.name))
    seen: set[str] = set()
    out = []
    for ep in eps:
        if ep.name not in seen:
            seen.add(ep.name)
            out.append((ep.name, ep.load()))
    return out
