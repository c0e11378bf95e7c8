"""``robomd report``: report.json and a self-contained report.html for finished campaigns."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write report.json and report.html for one or more finished campaigns",
        description="Reads each campaign directory's diagnosis.json (and its rollouts) and "
                    "writes report.json and a self-contained report.html: radar plot and bar "
                    "chart of the failure likelihoods, the ranked table with observed failure "
                    "rates and 95%% intervals, entropy, number of failure modes, FSI, a heatmap "
                    "across campaigns, and ranking accuracy against a ground-truth sweep.")
    p.add_argument("campaigns", type=Path, nargs="+", metavar="CAMPAIGN_DIR",
                   help="campaign directories written by `robomd diagnose`")
    p.add_argument("--ground-truth", type=Path,
                   help="a sweep's failure_rates.json: adds pairwise accuracy and Kendall tau")
    p.add_argument("--out", type=Path,
                   help="output directory (default: the campaign directory when there is one, "
                        "else runs/report)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from robomd_diagnoser.analysis import load_ground_truth
    from robomd_diagnoser.report import ReportError, load_result, write_report

    try:
        truth = load_ground_truth(args.ground_truth) if args.ground_truth else None
        results = [load_result(d, truth) for d in args.campaigns]
        out = args.out or (args.campaigns[0] if len(args.campaigns) == 1 else Path("runs/report"))
        json_path, html_path = write_report(results, out)
    except (ReportError, ValueError) as exc:
        print(f"robomd report: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {json_path} and {html_path}")
    return 0
