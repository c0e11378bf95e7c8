"""``robomd train-state-bc``: train the low-dimensional-state BC policy on state demonstrations."""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    from robomd_diagnoser.learning.state_bc import StateTrainConfig

    d = StateTrainConfig()
    p = sub.add_parser(
        "train-state-bc",
        help="train a state BC policy (eef_pos + gripper + object state -> action), no camera",
        description="Trains robomd_diagnoser.learning.state_bc's MLP on every *.npz state "
                    "demonstration under --demos (from `robomd collect-state-demos`) and writes "
                    "weights loadable as policy spec bc_state:<FILE>.")
    p.add_argument("--demos", required=True, help="directory of state demonstrations")
    p.add_argument("--out", required=True, help="weights file to write (.pt)")
    p.add_argument("--epochs", type=int, default=d.epochs, help="default: %(default)s")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="default: %(default)s")
    p.add_argument("--lr", type=float, default=d.lr, help="peak learning rate "
                   "(default: %(default)s)")
    p.add_argument("--hidden", type=int, default=d.hidden, help="MLP width "
                   "(default: %(default)s)")
    p.add_argument("--layers", type=int, default=d.layers, help="MLP hidden layers "
                   "(default: %(default)s)")
    p.add_argument("--input-noise", type=float, default=d.input_noise,
                   help="std of noise on the normalised inputs (default: %(default)s)")
    p.add_argument("--val-fraction", type=float, default=d.val_fraction,
                   help="share of episodes held out for validation (default: %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="default: %(default)s")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from robomd_diagnoser.cli import not_positive
    from robomd_diagnoser.learning.state_bc import StateBCError, StateTrainConfig, train_state_bc

    def fail(msg: str) -> int:
        print(f"robomd train-state-bc: error: {msg}", file=sys.stderr)
        return 2

    if error := not_positive(args, ("epochs", "batch_size", "hidden", "layers")):
        return fail(error)
    if not 0.0 <= args.val_fraction < 1.0:
        return fail(f"--val-fraction must be in [0, 1), got {args.val_fraction}")
    if args.input_noise < 0:
        return fail(f"--input-noise must be >= 0, got {args.input_noise}")
    cfg = StateTrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                           val_fraction=args.val_fraction, hidden=args.hidden,
                           layers=args.layers, input_noise=args.input_noise, seed=args.seed)
    try:
        train_state_bc(args.demos, args.out, cfg, log=lambda line: print(line, flush=True))
    except (FileNotFoundError, StateBCError) as exc:
        return fail(str(exc))
    return 0
