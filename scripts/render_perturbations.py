"""Render one image per factor family next to the nominal scene (docs/img/perturbations/).

    python scripts/render_perturbations.py [--catalog config/catalogs/lift_factors.yaml]
        [--size 192] [--out docs/img/perturbations]

Each PNG shows the scene camera's image (what the policy sees, digital corruptions included) of
the nominal scene (left) and under one level of the family (right), episode seed 0. For
action_noise the arm has run 20 steps of a hold-still policy on both sides.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from robomd_diagnoser.catalog import load_catalog
from robomd_sim_bridge.world import RobosuiteWorld

#: The level shown per family (default: the family's last level).
SHOWN = {"cube_hue": "120", "table_color": "red", "robot_color": "red", "light_intensity": "0p2",
         "light_color": "240", "distractors": "4", "robot_joint_offset": "0p1",
         "cube_size": "2_1_1", "action_noise": "0p2", "image_noise": "0p1"}
ACTION_STEPS = 20


class _Still:
    uses_image = False

    def reset(self) -> None:
        pass

    def act(self, obs: dict) -> np.ndarray:
        return np.r_[np.zeros(6), -1.0]


def _frame(world: RobosuiteWorld, size: int, steps: int) -> np.ndarray:
    if steps:
        world.execute(steps, 0)
    return world.render(size)


def _panel(nominal: np.ndarray, changed: np.ndarray, title: str) -> Image.Image:
    h, w, _ = nominal.shape
    band = 18
    img = Image.new("RGB", (2 * w + 4, h + band), "white")
    img.paste(Image.fromarray(nominal), (0, band))
    img.paste(Image.fromarray(changed), (w + 4, band))
    draw = ImageDraw.Draw(img)
    draw.text((3, 3), "nominal", fill="black")
    draw.text((w + 7, 3), title, fill="black")
    return img


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--catalog", default="config/catalogs/lift_factors.yaml")
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("--out", type=Path, default=Path("docs/img/perturbations"))
    args = ap.parse_args()
    catalog = load_catalog(args.catalog)
    world = RobosuiteWorld(catalog, _Still(), camera_size=args.size, video_size=args.size)
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        for family in catalog.space.families:
            level = next((lv for lv in family.levels if lv.name == SHOWN.get(family.name)),
                         family.levels[-1])
            steps = ACTION_STEPS if family.factor == "action_noise" else 0
            world.reset(0)
            nominal = _frame(world, args.size, steps)
            world.apply([level.full_name])
            changed = _frame(world, args.size, steps)
            path = args.out / f"{family.name}.png"
            _panel(nominal, changed, level.full_name).save(path, optimize=True)
            print(f"{path}: {level.text}")
    finally:
        world.close()


if __name__ == "__main__":
    main()
