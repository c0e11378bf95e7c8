"""``robomd train-bc``: train the vision behaviour-cloning policy on collected demonstrations."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    from robomd_diagnoser.learning.augment import COLOR_AUG_FACTORS
    from robomd_diagnoser.learning.train import TrainConfig

    d = TrainConfig()
    p = sub.add_parser(
        "train-bc",
        help="train a vision BC policy (image + eef_pos + gripper -> action) on demos",
        description="Trains the vision BC CNN policy on every *.npz demonstration under "
                    "--demos and writes weights loadable as policy spec bc:<FILE>.")
    p.add_argument("--demos", required=True, help="directory of demonstrations "
                   "(from `robomd collect-demos`), searched recursively")
    p.add_argument("--out", required=True, help="weights file to write (.pt)")
    p.add_argument("--epochs", type=int, default=d.epochs, help="default: %(default)s")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="default: %(default)s")
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate "
                   "(default: %(default)s)")
    p.add_argument("--val-fraction", type=float, default=d.val_fraction,
                   help="share of episodes held out for validation (default: %(default)s)")
    p.add_argument("--color-aug", nargs="*", default=[], metavar="FACTOR=AMOUNT",
                   help="photometric augmentation, factors: " + ", ".join(COLOR_AUG_FACTORS)
                   + " with amounts in [0, 1], e.g. --color-aug brightness=0.2 tint=0.15")
    p.add_argument("--shift", type=int, default=d.shift,
                   help="random-shift augmentation in pixels, 0 to disable (default: %(default)s)")
    p.add_argument("--channels", type=int, nargs="+", default=list(d.channels),
                   help="conv channels (default: %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="default: %(default)s")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from robomd_diagnoser.learning.augment import parse_color_aug
    from robomd_diagnoser.learning.train import TrainConfig, train_bc

    try:
        color_aug = parse_color_aug(args.color_aug)
    except ValueError as exc:
        print(f"train-bc: {exc}", file=sys.stderr)
        return 2
    for name in ("epochs", "batch_size"):
        if getattr(args, name) < 1:
            print(f"train-bc: --{name.replace('_', '-')} must be >= 1", file=sys.stderr)
            return 2
    if not 0.0 <= args.val_fraction < 1.0:
        print("train-bc: --val-fraction must be in [0, 1)", file=sys.stderr)
        return 2
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                      val_fraction=args.val_fraction, color_aug=color_aug, shift=args.shift,
                      channels=tuple(args.channels), seed=args.seed)
    try:
        train_bc(args.demos, args.out, cfg, log=lambda line: print(line, flush=True))
    except (FileNotFoundError, ValueError) as exc:
        print(f"train-bc: {exc}", file=sys.stderr)
        return 1
    return 0
