"""Digital perturbations: changes to the software between the camera, the policy and the arm, not
to the scene (the factors marked ``digital`` in :data:`robomd_diagnoser.space.FACTORS`).

One definition serves both worlds. The sim bridge corrupts every image its scene camera renders
and perturbs the policy's actions before the controller; the UR5e policy executor corrupts each
camera frame (once resized to the policy's image size) before the policy sees it and perturbs the
policy's actions before the safety envelope, which still limits whatever comes out.

Image corruptions run in a fixed order (blur, contrast, brightness, Gaussian noise) whatever the
order of the levels; action-noise levels add in quadrature. Noise comes from a generator seeded by
the rollout's seed (:meth:`DigitalPipeline.reseed`), so a rollout's noise is reproducible.

On a real robot a catalog entry is split (:func:`split`) into its physical part, which a person
makes when prompted, and its digital levels, which need nobody.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from robomd_diagnoser.perturbation import CatalogError, Perturbation
from robomd_diagnoser.space import FACTORS, Level

#: Digital image factors, in the order they are applied.
IMAGE_FACTORS = ("image_blur", "image_contrast", "image_brightness", "image_noise")
ACTION_FACTORS = ("action_noise",)


def split(p: Perturbation) -> tuple[str | None, tuple[Level, ...]]:
    """A catalog entry's physical part and its digital levels.

    :param p: a single entry (always physical) or a space member.
    :return: the catalog name of the physical part (``p`` itself, or the member made of ``p``'s
        physical levels, which the same space holds; None when every level is digital) and the
        digital levels in family order.
    """
    digital = tuple(e for e in p.edits if e.digital)
    if not digital:
        return p.name, ()
    return "+".join(e.full_name for e in p.edits if not e.digital) or None, digital


def needs_operator(p: Perturbation) -> bool:
    """True when applying ``p`` on a real robot needs a person (it has a physical part)."""
    return split(p)[0] is not None


class DigitalPipeline:
    """The digital levels in effect and the rollout's noise generator.

    Not thread-safe: set it between rollouts from the thread that runs them.
    """

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        """No digital level in effect (the nominal pipeline)."""
        self.image_ops: list[tuple[str, float]] = []
        self.action_noise = 0.0
        self._rng = np.random.default_rng(0)

    @property
    def active(self) -> bool:
        """True when some level changes images or actions."""
        return bool(self.image_ops or self.action_noise)

    def add(self, level: Level) -> None:
        """Put one digital level in effect on top of the others.

        :raises CatalogError: for a factor that is not digital, or a value that is not one number
            in the factor's range (a level that came over ROS is checked again), naming the level.
        """
        where = f"family {level.family!r} level {level.name!r}"
        if level.factor not in IMAGE_FACTORS + ACTION_FACTORS:
            raise CatalogError(f"{where}: factor {level.factor!r} is not digital (digital: "
                               f"{', '.join(IMAGE_FACTORS + ACTION_FACTORS)}); it changes the "
                               "scene, so the world or the operator applies it")
        factor = FACTORS[level.factor]
        if (isinstance(level.value, str) or len(level.value) != 1
                or not factor.lo <= level.value[0] <= factor.hi):
            raise CatalogError(f"{where}: factor {level.factor} takes one number in "
                               f"[{factor.lo:g}, {factor.hi:g}], got {level.value!r}")
        if level.factor in IMAGE_FACTORS:
            self.image_ops.append((level.factor, level.value[0]))
        else:
            self.action_noise = float(np.hypot(self.action_noise, level.value[0]))

    def set(self, perturbations: Iterable[Perturbation]) -> None:
        """Put exactly the digital levels of ``perturbations`` in effect (their physical parts
        are ignored); on an error nothing changes.

        :raises CatalogError: for a level :meth:`add` refuses.
        """
        staged = DigitalPipeline()
        for p in perturbations:
            for level in split(p)[1]:
                staged.add(level)
        self.image_ops, self.action_noise = staged.image_ops, staged.action_noise

    def reseed(self, seed: int) -> None:
        """Draw the coming rollout's noise from ``seed`` (call at the rollout's start)."""
        self._rng = np.random.default_rng([seed, 7])

    def describe(self) -> str:
        """The levels in effect, in words (``"none"`` when nominal)."""
        parts = [f"{op} {v:g}" for op, v in self.image_ops]
        if self.action_noise:
            parts.append(f"action_noise {self.action_noise:g}")
        return ", ".join(parts) or "none"

    def corrupt(self, image: np.ndarray) -> np.ndarray:
        """``image`` (HxWxC uint8) as the policy sees it under the image levels in effect."""
        if not self.image_ops:
            return image
        img = image.astype(np.float64) / 255.0
        for name in IMAGE_FACTORS:
            for op, v in self.image_ops:
                if op != name:
                    continue
                if op == "image_blur" and v > 0:
                    img = blur(img, v)
                elif op == "image_contrast":
                    img = (img - img.mean(axis=(0, 1))) * v + img.mean(axis=(0, 1))
                elif op == "image_brightness":
                    img = img + v
                elif op == "image_noise":
                    img = img + self._rng.normal(0.0, v, img.shape)
        return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)

    def perturb_action(self, action: np.ndarray) -> np.ndarray:
        """``action`` with the action noise in effect added (then clipped to [-1, 1])."""
        if not self.action_noise:
            return action
        action = np.asarray(action, dtype=np.float64)
        return np.clip(action + self._rng.normal(0.0, self.action_noise, action.shape), -1, 1)


def blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur (edges replicated) of an HxWxC float image; sigma in pixels."""
    radius = max(1, int(np.ceil(3 * sigma)))
    x = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (x / sigma) ** 2)
    kernel /= kernel.sum()
    for axis in (0, 1):
        pad = [(0, 0)] * img.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(img, pad, mode="edge")
        img = sum(w * np.take(padded, range(i, i + img.shape[axis]), axis=axis)
                  for i, w in enumerate(kernel))
    return img
