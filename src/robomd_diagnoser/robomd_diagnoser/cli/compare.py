"""``robomd compare``: several policies over the same perturbations, with intervals and tests."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="compare the policies of several campaign or sweep directories (same task)",
        description="Reads campaign directories (diagnosis.json + rollouts.sqlite) or sweep "
                    "directories (failure_rates.json + rollouts.sqlite) of different policies "
                    "on one task and writes compare.json, compare.html and the figures "
                    "stacked.png, radar.png, heatmap.png and grouped.png: each policy's observed "
                    "failure rate per perturbation with an interval (anytime-valid for "
                    "campaigns, Wilson for sweeps), its failure distribution and entropy, and "
                    "the perturbations where two policies differ (two-proportion z-test, "
                    "Holm-adjusted over all tests).")
    p.add_argument("dirs", type=Path, nargs="+", metavar="DIR",
                   help="campaign or sweep directories, one policy each")
    p.add_argument("--out", type=Path, default=Path("runs/compare"),
                   help="output directory (default: %(default)s)")
    p.add_argument("--confidence", type=float,
                   help="of the intervals and the tests (default: the one the directories were "
                        "run at)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from robomd_diagnoser.compare import CompareError, compare, write_comparison

    try:
        comparison = compare(args.dirs, args.confidence)
    except CompareError as exc:
        print(f"robomd compare: error: {exc}", file=sys.stderr)
        return 2
    paths = write_comparison(comparison, args.out)
    ov = comparison["overlap"]
    print(f"compared {len(comparison['policies'])} policies on {len(ov['compared'])} "
          f"perturbations ({len(ov['common'])} measured under every policy)")
    for label, names in ov["only"].items():
        if names:
            print(f"  left out, measured under {label} only: {', '.join(names)}")
    significant = [t for t in comparison["tests"] if t["significant"]]
    print(f"{len(significant)} of {len(comparison['tests'])} pairwise differences significant "
          f"at {comparison['confidence']:.0%} ({comparison['correction']}-adjusted):")
    for t in significant:
        print(f"  {t['perturbation']}: {t['a']} {t['rate_a']:.2f} vs {t['b']} {t['rate_b']:.2f} "
              f"(adjusted p {t['p_adjusted']:.2g})")
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0
