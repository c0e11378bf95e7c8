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
        description="Embeds each text at the nominal scene (or with images of its own scene, "
                    "--scene) with the failure embedding trained by `robomd embed train`, "
                    "trains (once per seed, cached) PPO in the embedding space on the known "
                    "embeddings (Algorithm 2, no rollouts), and ranks the "
                    "texts by the policy's log density at the nominal scene (Eq. 4). Prints the "
                    "reliability (distance to the nearest known embedding) beside each and warns "
                    "when it is far. Deterministic for a fixed --seed.")
    p.add_argument("texts", nargs="*", metavar="TEXT",
                   help='perturbation descriptions, e.g. "Change table color to black"')
    p.add_argument("--campaign", type=Path, required=True,
                   help="the campaign or sweep directory the embedding was trained on")
    p.add_argument("--model", type=Path,
                   help="the `embed train` output (default: CAMPAIGN/continuous)")
    p.add_argument("--scene", action="append", default=[], metavar="TEXT=PATH",
                   help="images of TEXT's scene (observed or rendered, no rollout): a PNG/JPEG, "
                        "a .npy of (K, H, W, 3) uint8, or a directory of them; TEXT is ranked "
                        "with them instead of the nominal scene (repeatable; adds TEXT to the "
                        "ranking if not given)")
    p.add_argument("--seed", type=int, default=a.seed, help="agent seed (default: %(default)s)")
    p.add_argument("--timesteps", type=int, default=a.timesteps,
                   help="agent training steps (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the ranking as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from robomd_diagnoser.continuous.agent import AgentSettings
    from robomd_diagnoser.continuous.model import ModelError
    from robomd_diagnoser.continuous.query import load_agent, load_scene, rank_texts

    torch.set_num_threads(1)  # small networks: one thread is faster and bit-reproducible
    model = args.model or args.campaign / "continuous"
    scenes = {}
    for item in args.scene:
        text, sep, path = item.rpartition("=")
        if not sep or not text or not path:
            print(f"robomd query: error: --scene {item!r}: use TEXT=PATH, e.g. --scene "
                  '"Change table color to black=photos/black_table.png"', file=sys.stderr)
            return 2
        try:
            scenes[text] = load_scene(path)
        except ValueError as exc:
            print(f"robomd query: error: --scene: {exc}", file=sys.stderr)
            return 2
    texts = list(dict.fromkeys([*args.texts, *scenes]))
    if not texts:
        print("robomd query: error: give at least one TEXT (or --scene TEXT=PATH)",
              file=sys.stderr)
        return 2
    try:
        embedder, agent = load_agent(model, AgentSettings(timesteps=args.timesteps,
                                                          seed=args.seed))
    except (ModelError, FileNotFoundError, ValueError) as exc:
        print(f"robomd query: error: {exc} (train with `robomd embed train --data "
              f"{args.campaign} --out {model}`)", file=sys.stderr)
        return 2
    try:
        rows = rank_texts(embedder, agent, texts, [scenes.get(t) for t in texts])
    except ValueError as exc:
        print(f"robomd query: error: {exc}", file=sys.stderr)
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
