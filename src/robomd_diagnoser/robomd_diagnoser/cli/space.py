"""``robomd space describe``: the factors, levels, combination order and size of a catalog's space.

Works from the catalog alone (no simulator), and never lists the space's members.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("space", help="perturbation spaces: factor families and combinations",
                       description="Inspect a catalog's perturbation space.")
    verbs = p.add_subparsers(dest="space_command", metavar="<verb>", required=True)
    d = verbs.add_parser("describe", help="factors, levels, order and space size of a catalog",
                         description="Prints each family (factor, target, levels, physical or "
                                     "digital), the combination order and the number of "
                                     "members, by order.")
    d.add_argument("catalog", type=Path, help="catalog YAML (e.g. config/catalogs/"
                                              "lift_factors.yaml)")
    d.add_argument("--json", action="store_true",
                   help="print JSON with keys families, members, order")
    d.set_defaults(func=describe)


def describe(args: argparse.Namespace) -> int:
    from robomd_diagnoser.catalog import CatalogError, load_catalog

    try:
        catalog = load_catalog(args.catalog)
    except CatalogError as exc:
        print(f"robomd space describe: error: {exc}", file=sys.stderr)
        return 2
    space = catalog.space
    singles = len(catalog.perturbations)
    if space is None:
        info = {"families": [], "order": 0, "members": 0, "members_by_order": {}}
    else:
        info = space.describe()
    info = {"catalog": str(args.catalog), "task": catalog.task, "world": catalog.world,
            "singles": singles, **info, "total": len(catalog)}
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{args.catalog}: task {catalog.task}, world {catalog.world}")
    print(f"{singles} single perturbation(s); {len(info['families'])} famil(ies)")
    for f in info["families"]:
        kind = "digital" if f["digital"] else "physical"
        print(f"  {f['name']:<22} {f['factor']:<20} {f['target']:<8} {kind:<8} "
              f"{len(f['levels']):>3} levels: {', '.join(f['levels'])}")
    by_order = ", ".join(f"order {k}: {v}" for k, v in info["members_by_order"].items())
    print(f"combination order {info['order']}; {info['members']} members ({by_order}); "
          f"{info['total']} perturbations in all")
    return 0
