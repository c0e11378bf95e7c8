"""``robomd query``: rank perturbation texts, seen or unseen, by continuous RoboMD (Eq. 4)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


def register(sub: argparse._SubParsersAction) -> None:
    from robomd_diagnoser.continuous.agent import AgentSettings

    a = AgentSettings()
    p = sub.add_parser(
        "query", help="rank perturbation texts by failure likelihood (continuous RoboMD)",
        description="Embeds each text at the nominal scene (or with images of its own scene: "
                    "--scene, --render) with the failure embedding trained by `robomd embed "
                    "train`, trains (once per seed, cached) PPO in the embedding space on the "
                    "known embeddings (Algorithm 2, no rollouts), and ranks the texts by the "
                    "policy's log density at the nominal scene (Eq. 4). Prints the "
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
    p.add_argument("--render", type=Path, metavar="CATALOG",
                   help="simulated data: render the scene of each TEXT that is a name or text of "
                        "this catalog (any catalog of the task) in the data's world, no rollout, "
                        "and rank it with those images; a name is ranked by its catalog text")
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
    if args.render is not None:
        try:
            texts = _render(args.render, args.campaign, texts, scenes)
        except ValueError as exc:
            print(f"robomd query: error: --render: {exc}", file=sys.stderr)
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


def _render(catalog_path: Path, data: Path, texts: list[str],
            scenes: dict[str, np.ndarray]) -> list[str]:
    """Render the scene of every text without one into ``scenes``; returns the texts to rank (a
    catalog name becomes its catalog text).

    :raises ValueError: for a text the catalog does not know, or data that cannot be rendered.
    """
    from robomd_diagnoser.catalog import load_catalog
    from robomd_diagnoser.continuous.dataset import open_source, render_scenes
    from robomd_diagnoser.continuous.train import NOMINAL_IMAGES

    catalog = load_catalog(catalog_path)
    name_of = {p.text: p.name for p in catalog} | {p.name: p.name for p in catalog}
    unknown = [t for t in texts if t not in scenes and t not in name_of]
    if unknown:
        raise ValueError(f"{unknown} are neither names nor texts of {catalog_path}; give their "
                         "scene with --scene TEXT=PATH")
    ranked = [t if t in scenes else catalog[name_of[t]].text for t in texts]
    names = list(dict.fromkeys(name_of[t] for t in texts if t not in scenes))
    print(f"rendering {len(names)} scene(s) x {NOMINAL_IMAGES} seeds", file=sys.stderr)
    images = render_scenes(open_source(data), catalog, names, NOMINAL_IMAGES)
    for name in names:
        scenes[catalog[name].text] = images[name]
    return list(dict.fromkeys(ranked))
