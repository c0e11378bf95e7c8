"""Shared helpers for the continuous-RoboMD tests: a tiny sweep directory with synthetic scene
images already cached, so nothing is simulated."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from robomd_diagnoser.catalog import Catalog, parse_catalog
from robomd_diagnoser.continuous.dataset import SceneImages, open_source
from robomd_diagnoser.continuous.model import EmbedderConfig
from robomd_diagnoser.store import RolloutRecord, RolloutStore
from robomd_diagnoser.sweep import SweepSettings, check_settings

#: name -> (text, kind, target, colour, failure rate)
PERTS = {
    "table_red": ("Change table color to red", "color", "table", (1.0, 0.0, 0.0), 1.0),
    "table_blue": ("Change table color to blue", "color", "table", (0.0, 0.0, 1.0), 1.0),
    "cube_red": ("Change cube color to red", "color", "cube", (0.9, 0.1, 0.1), 0.0),
    "cube_green": ("Change cube color to green", "color", "cube", (0.1, 0.9, 0.1), 0.0),
}
SEEDS = 4
#: A backbone small enough for tests (one 16 px patch, one block).
TINY = EmbedderConfig(img_size=16, depth=1, hidden_dim=32, embed_dim=16)


def catalog() -> Catalog:
    """The test catalog."""
    return parse_catalog({"task": "lift", "perturbations": [
        {"name": n, "text": t, "kind": k, "target": g, "value": list(c)}
        for n, (t, k, g, c, _) in PERTS.items()]})


def image(perturbations: tuple[str, ...], seed: int) -> np.ndarray:
    """A synthetic 16 px scene: grey, with the colour of each applied perturbation in a band."""
    img = np.full((16, 16, 3), 128, np.uint8)
    for i, name in enumerate(perturbations):
        img[4 * i:4 * i + 4] = (np.asarray(PERTS[name][3]) * 255).astype(np.uint8)
    img[15, seed % 16] = 0  # the seed moves one pixel
    return img


def make_sweep(directory: Path, render: bool = False) -> Path:
    """A sweep directory: nominal and each perturbation x SEEDS rollouts, outcome from the rate.

    :param directory: where to write it.
    :param render: leave the images uncached (a test renderer must then be passed).
    """
    cat = catalog()
    with RolloutStore(directory / "rollouts.sqlite") as store:
        check_settings(store, SweepSettings.of(cat, "expert", 0, 150, 16, "UR5e"))
        for i in range(SEEDS):
            for name, perts in [("nominal", ())] + [(n, (n,)) for n in PERTS]:
                success = not (perts and PERTS[name][4] > 0.5)
                store.add(RolloutRecord(f"sweep/{name}/{i}", perts, i, "completed", success,
                                        40 if success else 150, 1.0))
        store.add(RolloutRecord("sweep/cube_red/9", ("cube_red",), 9, "aborted", None, 0, 0.0))
    if not render:
        images = SceneImages(open_source(directory))
        for i in range(SEEDS):
            for perts in [()] + [(n,) for n in PERTS]:
                images.put(perts, i, image(perts, i))
    return directory
