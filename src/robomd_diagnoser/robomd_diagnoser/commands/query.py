"""``robomd query``: rank perturbation texts, seen or unseen, by continuous RoboMD (Eq. 4)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from robomd_diagnoser.continuous.agent import AgentSettings

    a = AgentSettings()
    p = sub.add_parser(
        "query", help="rank perturbation texts by failure likelihood (continuous RoboMD)",
        description="Embeds each text at the nominal scene with the failure embedding trained by "
                    "`robomd embed train`, trains (once per seed, cached) PPO in the embedding "
                    "space on the known embeddings (Algorithm 2, no rollouts), and ranks the "
                    "texts by the policy's log density at the nominal scene (Eq. 4). Prints the "
                    "reliability (distance to the nearest known embedding) beside each and warns "
                    "when it is far. Deterministic for a fixed --seed.")
    p.add_argument("texts", nargs="+", metavar="TEXT",
                   help='perturbation descriptions, e.g. "Change table color to black"')
    p.add_argument("--campaign", type=Path, required=True,
                   help="the campaign or sweep directory the embedding was trained on")
    p.add_argument("--model", type=Path,
                   help="the `embed train` output (default: CAMPAIGN/continuous)")
    p.add_argument("--seed", type=int, default=a.seed, help="agent seed (default: %(default)s)")
    p.add_argument("--timesteps", type=int, default=a.timesteps,
                   help="agent training steps (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the ranking as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from robomd_diagnoser.continuous.agent import AgentSettings
    from robomd_diagnoser.continuous.model import ModelError
    from robomd_diagnoser.continuous.query import load_agent, rank_texts

    torch.set_num_threads(1)  # small networks: one thread is faster and bit-reproducible
    model = args.model or args.campaign / "continuous"
    try:
        embedder, agent = load_agent(model, AgentSettings(timesteps=args.timesteps,
                                                          seed=args.seed))
        rows = rank_texts(embedder, agent, args.texts)
    except (ModelError, FileNotFoundError, ValueError) as exc:
        print(f"robomd query: error: {exc} (train with `robomd embed train --data "
              f"{args.campaign} --out {model}`)", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"model": str(model), "seed": args.seed,
                          "reliability_threshold": agent.known.reliability_threshold,
                          "ranking": [r.to_dict() for r in rows]}, indent=2))
        return 0
    width = max(len(r.text) for r in rows)
    print(f"{'rank':>4}  {'perturbation':<{width}}  {'log ratio':>10}  {'reliability':>11}  "
          "nearest known")
    for r in rows:
        warn = "  far from known data" if r.far else ""
        print(f"{r.rank:>4}  {r.text:<{width}}  {r.log_ratio:>10.2f}  {r.reliability:>11.3f}  "
              f"{r.nearest}{warn}")
    print(f"log ratio: Eq. 4 against the nominal scene (> 0: more failure-prone); reliability: "
          f"distance to the nearest known embedding, flagged above "
          f"{agent.known.reliability_threshold:.3f}")
    return 0
