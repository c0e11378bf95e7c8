"""``robomd embed train|eval``: the vision-language failure embedding of continuous RoboMD."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from robomd_diagnoser.progress import add_progress_argument

#: ``--full``: the paper's sizes (ViT-Ti/16 at 224 px with all 12 blocks, 100 epochs).
FULL = {"img_size": 224, "depth": None, "epochs": 100}


def add_model_args(p: argparse.ArgumentParser) -> None:
    """The embedder and training options (shared with ``robomd bench continuous``)."""
    from robomd_diagnoser.continuous.model import BC_BACKBONE, DEFAULT_BACKBONE, EmbedderConfig
    from robomd_diagnoser.continuous.train import TrainSettings

    c, t = EmbedderConfig(), TrainSettings()
    g = p.add_argument_group("embedding model")
    g.add_argument("--backbone", default=DEFAULT_BACKBONE,
                   help=f"timm image backbone, or '{BC_BACKBONE}': the frozen image encoder of the "
                        "BC policy under test (its weights: --image-checkpoint, else the data's "
                        "policy spec) (default: %(default)s)")
    g.add_argument("--img-size", type=int, help=f"image input size (default: {c.img_size})")
    g.add_argument("--depth", type=lambda s: None if s == "none" else int(s), default=c.depth,
                   help="ViT blocks, 'none' for the architecture's (default: %(default)s)")
    g.add_argument("--image-checkpoint",
                   help="local weights file for the backbone (default: random initialisation)")
    g.add_argument("--text-encoder", default=c.text_encoder,
                   help="minilm (offline all-MiniLM-L6-v2) or open_clip:<model>:<checkpoint "
                        "path> (default: %(default)s)")
    g.add_argument("--image-only", action="store_true",
                   help="no text branch (the image-only ablation)")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, help=f"epochs (default: {t.epochs})")
    g.add_argument("--batch-size", type=int, default=t.batch_size,
                   help="batch size (default: %(default)s)")
    g.add_argument("--lr", type=float, default=t.lr, help="learning rate (default: %(default)s)")
    g.add_argument("--contrastive-weight", type=float, default=t.contrastive_weight,
                   help="weight of Eq. 1; 0 for BCE only (default: %(default)s)")
    g.add_argument("--margin", type=float, default=t.margin,
                   help="Eq. 1 margin, embeddings have unit norm (default: %(default)s)")
    g.add_argument("--similar-by", choices=("perturbation", "group"), default=t.similar_by,
                   help="which samples Eq. 1 calls similar: the same perturbation set, or the "
                        "same kinds and targets (default: %(default)s)")
    g.add_argument("--nominal-image-prob", type=float, default=t.nominal_image_prob,
                   help="probability of showing the nominal scene instead of the perturbed one "
                        "(default: %(default)s)")
    g.add_argument("--text-dropout", type=float, default=t.text_dropout,
                   help="probability of replacing a sample's text with the nominal text "
                        "(default: %(default)s)")
    g.add_argument("--seed", type=int, default=t.seed, help="seed (default: %(default)s)")
    g.add_argument("--full", action="store_true",
                   help="paper sizes: 224 px, all 12 ViT blocks, 100 epochs (slow on a CPU)")


def model_from_args(args: argparse.Namespace, policy: str | None = None,
                    task: str = "") -> tuple[Any, Any]:
    """The :class:`EmbedderConfig` and :class:`TrainSettings` the options ask for.

    :param args: the parsed options.
    :param policy: the data's policy spec; gives the weights of ``--backbone bc`` when
        ``--image-checkpoint`` does not.
    :param task: the data's task (the shipped weights of spec ``bc`` are per task).
    :raises ValueError: for ``--backbone bc`` without BC weights to read.
    """
    from robomd_diagnoser.continuous.model import BC_BACKBONE, EmbedderConfig
    from robomd_diagnoser.continuous.train import TrainSettings
    from robomd_diagnoser.learning.finetune import FinetuneError, parent_weights

    c, t = EmbedderConfig(), TrainSettings()
    full = FULL if args.full else {}
    checkpoint = args.image_checkpoint
    if args.backbone == BC_BACKBONE and checkpoint is None:
        try:
            checkpoint = str(parent_weights(policy or "", task))
        except FinetuneError:
            raise ValueError(f"--backbone {BC_BACKBONE}: the data's policy {policy!r} is not a BC "
                             "policy of this project; give its weights with --image-checkpoint "
                             "PATH, or use a timm backbone") from None
    config = EmbedderConfig(
        backbone=args.backbone, img_size=args.img_size or full.get("img_size", c.img_size),
        depth=full["depth"] if args.full else args.depth,
        image_checkpoint=checkpoint, text_encoder=args.text_encoder,
        use_text=not args.image_only)
    settings = TrainSettings(
        epochs=args.epochs or full.get("epochs", t.epochs), batch_size=args.batch_size,
        lr=args.lr, contrastive_weight=args.contrastive_weight, margin=args.margin,
        similar_by=args.similar_by, nominal_image_prob=args.nominal_image_prob,
        text_dropout=args.text_dropout, seed=args.seed)
    return config, settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("embed", help="train and evaluate the vision-language failure embedding",
                       description="The failure embedding of continuous RoboMD (Algorithm 2).")
    esub = p.add_subparsers(dest="embed", metavar="<action>", required=True)
    t = esub.add_parser(
        "train", help="train the embedding on a campaign's or sweep's rollouts",
        description="Trains image backbone + frozen text encoder + MLP to R^512 with BCE on "
                    "success and the contrastive loss of Eq. 1 on every completed rollout of "
                    "DATA (missing scene images are rendered once and cached in "
                    "DATA/scene_images). Writes OUT/embedder.pt and OUT/known.npz; resumes "
                    "from OUT/checkpoint.pt.")
    t.add_argument("--data", type=Path, required=True, help="campaign or sweep directory")
    t.add_argument("--out", type=Path, help="output directory (default: DATA/continuous)")
    t.add_argument("--exclude", default="",
                   help="comma-separated perturbations to hold out entirely")
    add_progress_argument(t)
    add_model_args(t)
    t.set_defaults(func=run_train)
    e = esub.add_parser(
        "eval", help="confusion matrix vs identity, kNN accuracy, ablations",
        description="Cosine-similarity confusion matrix of per-perturbation mean embeddings "
                    "(MSE and Frobenius distance to the identity; paper Table V), kNN accuracy as "
                    "k grows, and the BCE-only and image-only ablations (trained with the run's "
                    "data and settings into MODEL/ablations/ when missing). Writes "
                    "embedding_eval.json/.md and PNG heatmaps.")
    e.add_argument("--model", type=Path, required=True, help="an `embed train` output directory")
    e.add_argument("--data", type=Path, help="data directory (default: the one trained on)")
    e.add_argument("--out", type=Path, help="report directory (default: MODEL/eval)")
    e.add_argument("--no-ablations", action="store_true", help="evaluate the model only")
    e.add_argument("--json", action="store_true", help="print the figures as JSON")
    add_progress_argument(e)
    e.set_defaults(func=run_eval)


def _fail(msg: str) -> int:
    print(f"robomd embed: error: {msg}", file=sys.stderr)
    return 2


def run_train(args: argparse.Namespace) -> int:
    from robomd_diagnoser.continuous.dataset import DatasetError, load_dataset, open_source
    from robomd_diagnoser.continuous.model import ModelError
    from robomd_diagnoser.continuous.train import EMBEDDER, TrainError, train_embedding

    try:
        source = open_source(args.data)
        config, settings = model_from_args(args, source.policy, source.catalog.task)
        exclude = [n.strip() for n in args.exclude.split(",") if n.strip()]
        dataset = load_dataset(args.data, exclude, progress=not args.no_progress)
        out = args.out or args.data / "continuous"
        _, known = train_embedding(dataset, config, settings, out, not args.no_progress)
    except (DatasetError, ModelError, TrainError, ValueError) as exc:
        return _fail(str(exc))
    fails = int((~known.success).sum())
    print(f"trained on {len(dataset)} rollouts ({fails} failures, "
          f"{len(set(known.names))} perturbation sets); wrote {out / EMBEDDER} and known.npz")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    import json

    from robomd_diagnoser.benchmarks import machine
    from robomd_diagnoser.continuous.dataset import DatasetError
    from robomd_diagnoser.continuous.evaluate import VARIANT_TITLES, evaluate_run
    from robomd_diagnoser.continuous.model import ModelError
    from robomd_diagnoser.continuous.train import TrainError

    try:
        qualities, paths = evaluate_run(args.model, args.data, not args.no_ablations, args.out,
                                        not args.no_progress, info={"machine": machine()})
    except (DatasetError, ModelError, TrainError, FileNotFoundError, ValueError) as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps({q.variant: {"mse": q.mse, "frobenius": q.frobenius,
                                      "head_accuracy": q.head_accuracy,
                                      "knn_perturbation": q.knn_perturbation,
                                      "knn_outcome": q.knn_outcome} for q in qualities},
                         indent=2))
        return 0
    print(f"{'embedding':<34} {'MSE':>8} {'Frobenius':>10} {'head acc':>9} {'kNN@1':>6}")
    for q in qualities:
        print(f"{VARIANT_TITLES[q.variant]:<34} {q.mse:>8.4f} {q.frobenius:>10.3f} "
              f"{q.head_accuracy:>9.3f} {q.knn_perturbation[1]:>6.2f}")
    print("paper Table V (image + text, BCE + contrastive): MSE 0.1801, Frobenius 7.6387")
    print(f"wrote {', '.join(str(p) for p in paths)}")
    return 0
