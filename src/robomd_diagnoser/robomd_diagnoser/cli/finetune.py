"""``robomd finetune``: demonstrations under the top failure modes -> a fine-tuned BC policy."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from robomd_diagnoser.cli import add_executor_args, executor_from_args, not_positive
from robomd_diagnoser.progress import add_progress_argument


def register(sub: argparse._SubParsersAction) -> None:
    from robomd_diagnoser.learning.finetune import STRATEGIES, FinetuneRequest

    d = FinetuneRequest()
    p = sub.add_parser(
        "finetune",
        help="fine-tune a diagnosed BC policy on expert demos under its top failure modes",
        description="Takes the top-K failure modes of a finished campaign (modes with observed "
                    "failures first), collects M expert demonstrations under each in simulation, "
                    "fine-tunes the campaign's BC policy from its weights on them mixed with "
                    "replayed original demonstrations, writes OUT/<strategy>/policy_v2.pt (the "
                    "parent is never written), re-evaluates before and after on the same scenes "
                    "and seeds, and writes OUT/finetune.json and OUT/finetune.html. With "
                    "--strategy targeted uniform both use the same demonstration budget (K x M). "
                    "Rerunning the same command resumes.")
    p.add_argument("--campaign", type=Path, required=True,
                   help="finished campaign directory (holds diagnosis.json)")
    p.add_argument("--top", type=int, default=d.top, help="top-K failure modes "
                   "(default: %(default)s)")
    p.add_argument("--demos-per-mode", type=int, default=d.demos_per_mode,
                   help="expert demonstrations per top mode (default: %(default)s)")
    p.add_argument("--strategy", nargs="+", choices=STRATEGIES, default=list(d.strategies),
                   help="targeted: demos under the top modes; uniform: the same number spread "
                        "over the whole catalog (default: %(default)s)")
    p.add_argument("--out", type=Path, help="output directory (default: <campaign>/finetune)")
    p.add_argument("--original-demos", type=Path,
                   help="the parent's training demonstrations, for the replay sample (default: "
                        "collect nominal expert episodes instead)")
    p.add_argument("--replay", type=int, help="replay episodes mixed in (default: K x M)")
    p.add_argument("--epochs", type=int, default=d.epochs, help="default: %(default)s")
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate "
                   "(default: %(default)s)")
    p.add_argument("--eval-rollouts", type=int, default=d.eval_rollouts,
                   help="rollouts per evaluated scene, before and after (default: %(default)s)")
    p.add_argument("--eval-top-only", action="store_true",
                   help="evaluate the nominal scene and the top modes only, not the whole catalog")
    p.add_argument("--eval-seed", type=int, default=d.eval_seed,
                   help="seed of evaluation repetition 0 (default: %(default)s)")
    p.add_argument("--demo-seed", type=int, default=d.demo_seed,
                   help="first seed of each demonstration batch (default: %(default)s)")
    p.add_argument("--workers", type=int, default=d.workers,
                   help="parallel simulator processes (default: %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed,
                   help="seed of replay draw, uniform allocation and training (default: "
                        "%(default)s)")
    add_progress_argument(p)
    add_executor_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from robomd_diagnoser.jobs import RolloutJobError
    from robomd_diagnoser.learning.finetune import FinetuneRequest, load_diagnosis, run_finetune
    from robomd_diagnoser.learning.finetune_report import write_html
    from robomd_diagnoser.store import StoreError
    from robomd_diagnoser.sweep import SweepError

    def fail(msg: str) -> int:
        print(f"robomd finetune: error: {msg}", file=sys.stderr)
        return 2

    if error := not_positive(args, ("top", "demos_per_mode", "epochs", "eval_rollouts",
                                    "workers")):
        return fail(error)
    if args.replay is not None and args.replay < 0:
        return fail(f"--replay must be >= 0, got {args.replay}")
    req = FinetuneRequest(top=args.top, demos_per_mode=args.demos_per_mode,
                          strategies=tuple(dict.fromkeys(args.strategy)),
                          original_demos=args.original_demos, replay=args.replay,
                          epochs=args.epochs, lr=args.lr, eval_rollouts=args.eval_rollouts,
                          eval_all=not args.eval_top_only, eval_seed=args.eval_seed,
                          demo_seed=args.demo_seed, workers=args.workers, seed=args.seed)
    try:
        req = dataclasses.replace(req, executor=executor_from_args(args))
        diag = load_diagnosis(args.campaign)
        out = args.out or args.campaign / "finetune"
        result = run_finetune(diag, out, req, log=lambda line: print(line, flush=True),
                              progress=not args.no_progress)
    except (ValueError, SweepError, StoreError, RolloutJobError,
            FileNotFoundError) as exc:  # FinetuneError, CatalogError, BCWeightsError
        return fail(f"{exc}\n(finished demonstrations, policies and rollouts are kept; rerun to "
                    "resume)")
    html_path = write_html(result, out)
    print(f"{'policy':<10} {'top modes':>10} {'nominal':>8} {'W1 ideal':>9}")
    for label, res in result["policies"].items():
        w1 = res["wasserstein_to_ideal"]
        print(f"{label:<10} {res['top_modes']['rate']:>10.2f} {res['nominal']['rate']:>8.2f} "
              f"{'-' if w1 is None else f'{w1:.4f}':>9}")
        if res["unmeasured"]:
            print(f"  (W1 leaves out {', '.join(res['unmeasured'])}: no completed rollout)")
    summary = result["summary"]
    gain = summary["targeted_vs_uniform_gain"]
    if gain is not None:
        lo, hi = summary["targeted_vs_uniform_gain_interval"]
        print(f"targeted - uniform success under the top modes: {gain:+.3f} (95% interval "
              f"[{lo:+.3f}, {hi:+.3f}], two-proportion test p = "
              f"{summary['targeted_vs_uniform_p_value']:.3g})")
    print(f"wrote {out / 'finetune.json'} and {html_path}")
    return 0
