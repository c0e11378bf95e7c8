"""Training samples for the failure embedding, read from a campaign's or a sweep's rollout store.

A sample is one completed rollout: the scene image before the rollout (the perturbed scene at the
rollout's seed), the perturbation text (the catalog ``text`` of each applied perturbation, joined
with ``"; "``; :data:`~robomd_diagnoser.sweep.NOMINAL_TEXT` for the nominal scene), the success
label, and the nominal scene's image at the same seed (used by training's nominal-image
augmentation and by queries, which embed texts at the nominal scene).

Images: sweeps do not keep images and campaigns cache only the images of successful steps, so
missing ones are rendered once with the directory's own world settings (reset with the rollout's
seed, apply the set, observe: exactly what the rollout started from) and cached as ``.npy`` in
``<dir>/scene_images/`` (:class:`SceneImages`). Aborted, cancelled and unavailable rollouts are
never samples (they are not policy outcomes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from robomd_diagnoser.catalog import Catalog, parse_catalog
from robomd_diagnoser.config import WorldSettings
from robomd_diagnoser.diagnosis_env import ObservationCache
from robomd_diagnoser.progress import ProgressReporter
from robomd_diagnoser.store import RolloutRecord, RolloutStore
from robomd_diagnoser.sweep import META_KEY as SWEEP_META
from robomd_diagnoser.sweep import NOMINAL, NOMINAL_TEXT
from robomd_diagnoser.world import RolloutStatus, World

STORE_FILE = "rollouts.sqlite"
IMAGE_DIR = "scene_images"
#: How the contrastive loss decides that two samples are "similar" (see :func:`similarity_label`).
SIMILAR_BY = ("perturbation", "group")

Renderer = Callable[[tuple[str, ...], int], np.ndarray]
"""(perturbations, seed) -> the HxWx3 uint8 pre-rollout scene image."""


class DatasetError(ValueError):
    """A directory cannot be read as embedding training data; the message says why and the fix."""


def perturbation_text(catalog: Catalog, perturbations: Sequence[str]) -> str:
    """The natural-language description of a cumulative perturbation set.

    :param catalog: the catalog that defines the names.
    :param perturbations: applied names, in order; empty for the nominal scene.
    """
    if not perturbations:
        return NOMINAL_TEXT
    return "; ".join(catalog[name].text for name in perturbations)


def similarity_label(catalog: Catalog, perturbations: Sequence[str], by: str) -> str:
    """The label that makes two samples "similar" for the contrastive loss (Eq. 1).

    ``perturbation``: the perturbation set itself (the paper's code: the action index), so each
    perturbation forms its own cluster. ``group``: the kinds and targets changed
    (``color:table``...), so e.g. all table colours form one cluster.

    :param catalog: the catalog.
    :param perturbations: applied names.
    :param by: one of :data:`SIMILAR_BY`.
    """
    if by not in SIMILAR_BY:
        raise ValueError(f"similar_by must be one of {SIMILAR_BY}, got {by!r}")
    if not perturbations:
        return NOMINAL
    if by == "perturbation":
        return "+".join(perturbations)
    return "+".join(f"{catalog[n].kind}:{catalog[n].target}" for n in perturbations)


@dataclass(frozen=True)
class DataSource:
    """A campaign or sweep directory and what is needed to re-create its scenes.

    :param directory: the directory holding ``rollouts.sqlite``.
    :param kind: ``sweep`` or ``campaign``.
    :param catalog: the perturbations the rollouts used.
    :param make_world: builds a world that can render this directory's scenes.
    :param horizon: the rollouts' control-step limit.
    :param policy: the spec of the policy under test (``bc``, ``bc:<path>``, ...).
    """

    directory: Path
    kind: str
    catalog: Catalog
    make_world: Callable[[], World]
    horizon: int
    policy: str


def _scene_world(catalog: Catalog, robot: str, camera_size: int) -> WorldSettings:
    """A simulated world that only shows ``catalog``'s scenes (no policy, nothing rolled out)."""
    return WorldSettings(type="sim", catalog=catalog, policy="", robot=robot,
                         camera_size=camera_size)


def open_source(directory: str | Path) -> DataSource:
    """Recognise a sweep or campaign directory from its store's metadata.

    :param directory: a directory written by ``robomd sweep`` or ``robomd diagnose``.
    :raises DatasetError: if it holds no rollout store or neither kind of metadata.
    """
    directory = Path(directory)
    path = directory / STORE_FILE
    if not path.is_file():
        raise DatasetError(f"--data {directory}: no {STORE_FILE} there; give a directory written "
                           "by `robomd sweep` or `robomd diagnose`")
    with RolloutStore(path) as store:
        sweep = store.get_meta(SWEEP_META)
        campaign = store.get_meta("campaign")
    if sweep is not None:
        catalog = parse_catalog({"task": sweep["task"], "perturbations": list(sweep["catalog"])},
                                f"{path} (sweep settings)")
        return DataSource(directory, "sweep", catalog,
                          _scene_world(catalog, sweep["robot"], int(sweep["camera_size"])),
                          int(sweep["horizon"]), str(sweep["policy"]))
    if campaign is not None:
        from robomd_diagnoser.campaign import build_world
        from robomd_diagnoser.catalog import load_catalog
        from robomd_diagnoser.config import CampaignConfig

        config = CampaignConfig.from_dict(campaign, f"{path} (campaign settings)")
        catalog = load_catalog(config.catalog)
        if config.world.type == "sim":
            factory: Callable[[], World] = _scene_world(catalog, config.world.robot,
                                                        config.world.camera_size)
        else:
            def factory() -> World:
                return build_world(config)
        return DataSource(directory, "campaign", catalog, factory, config.world.horizon,
                          config.policy)
    raise DatasetError(f"--data {directory}: {path} has neither sweep nor campaign settings; was "
                       "it written by `robomd sweep` or `robomd diagnose`?")


def render_scenes(source: DataSource, catalog: Catalog, names: Sequence[str],
                  count: int) -> dict[str, np.ndarray]:
    """Pre-rollout scenes of catalog perturbations in ``source``'s simulated world, at the first
    ``count`` seeds its rollouts used: reset, apply, observe; nothing is rolled out.

    :param source: a simulated sweep or campaign (its robot and camera size are used).
    :param catalog: the catalog defining ``names`` (any catalog of the same task).
    :param names: the perturbations to show, each applied alone.
    :param count: seeds (images) per perturbation.
    :returns: (count, H, W, 3) uint8 images by name.
    :raises DatasetError: for real-robot data, another task or an unknown name.
    """
    if not isinstance(source.make_world, WorldSettings) or source.make_world.type != "sim":
        raise DatasetError(f"{source.directory}: only simulated scenes can be rendered; photograph "
                           "the changed scene and pass it with --scene TEXT=PATH")
    if catalog.task != source.catalog.task:
        raise DatasetError(f"catalog {catalog.source} is for task {catalog.task}, the data in "
                           f"{source.directory} for {source.catalog.task}")
    unknown = [n for n in names if n not in catalog.names]
    if unknown:
        raise DatasetError(f"{unknown} are not in catalog {catalog.source}")
    with RolloutStore(source.directory / STORE_FILE) as store:
        seeds = sorted({r.seed for r in store.records()})[:count]
    world = replace(source.make_world, catalog=catalog)()
    try:
        out = {}
        for name in names:
            images = []
            for seed in seeds:
                world.reset(seed)
                world.apply((name,))
                images.append(np.asarray(world.observe(), dtype=np.uint8))
            out[name] = np.stack(images)
        return out
    finally:
        world.close()


class SceneImages:
    """Pre-rollout scene images by (perturbations, seed), rendered on demand and cached on disk.

    :param source: the directory whose scenes are shown.
    :param renderer: renders a missing image (default: a world built from ``source``, lazily).
    """

    def __init__(self, source: DataSource, renderer: Renderer | None = None) -> None:
        self.source = source
        self.cache = ObservationCache(source.directory / IMAGE_DIR)
        self._renderer = renderer
        self._world: World | None = None
        self.rendered = 0

    @staticmethod
    def name(perturbations: Sequence[str], seed: int) -> str:
        """The cache file stem of a scene."""
        return f"{seed}__{'+'.join(perturbations) or NOMINAL}"

    def put(self, perturbations: Sequence[str], seed: int, image: np.ndarray) -> None:
        """Cache an image obtained elsewhere (e.g. a campaign's observation cache)."""
        self.cache.put(self.name(perturbations, seed), np.asarray(image, dtype=np.uint8))

    def get(self, perturbations: Sequence[str], seed: int) -> np.ndarray:
        """The scene image, from the cache or rendered (then cached).

        :param perturbations: the cumulative set.
        :param seed: the rollout's seed.
        """
        name = self.name(perturbations, seed)
        image = self.cache.get(name)
        if image is None:
            image = np.asarray(self._render(tuple(perturbations), seed), dtype=np.uint8)
            self.cache.put(name, image)
            self.rendered += 1
        return image

    def _render(self, perturbations: tuple[str, ...], seed: int) -> np.ndarray:
        if self._renderer is not None:
            return self._renderer(perturbations, seed)
        if self._world is None:
            self._world = self.source.make_world()
        self._world.reset(seed)
        self._world.apply(perturbations)
        return self._world.observe()

    def close(self) -> None:
        """Release the rendering world, if one was built."""
        if self._world is not None:
            self._world.close()
            self._world = None


@dataclass
class RolloutDataset:
    """Embedding training samples (see the module doc); arrays are aligned by sample.

    :param catalog: the catalog of the source.
    :param perturbations: each sample's perturbation set.
    :param seeds: each sample's rollout seed.
    :param texts: each sample's perturbation text.
    :param success: each sample's outcome.
    :param images: pre-rollout images, (N, H, W, 3) uint8.
    :param nominal_images: the nominal scene at each sample's seed, (N, H, W, 3) uint8.
    :param horizon: the rollouts' step limit.
    :param source: the directory the samples came from.
    """

    catalog: Catalog
    perturbations: list[tuple[str, ...]]
    seeds: np.ndarray
    texts: list[str]
    success: np.ndarray
    images: np.ndarray
    nominal_images: np.ndarray
    horizon: int
    source: str

    def __len__(self) -> int:
        return len(self.texts)

    def labels(self, by: str) -> list[str]:
        """Each sample's contrastive label (:func:`similarity_label`)."""
        return [similarity_label(self.catalog, p, by) for p in self.perturbations]

    def without(self, exclude: Sequence[str]) -> RolloutDataset:
        """The samples that apply none of ``exclude`` (perturbations held out entirely).

        :param exclude: perturbation names.
        :raises DatasetError: for names not in the catalog.
        """
        _check_names(self.catalog, exclude, self.source)
        keep = [i for i, p in enumerate(self.perturbations) if not set(exclude) & set(p)]
        if not keep:
            raise DatasetError(f"no samples of {self.source} are left without {list(exclude)}")
        return RolloutDataset(self.catalog, [self.perturbations[i] for i in keep],
                              self.seeds[keep], [self.texts[i] for i in keep],
                              self.success[keep], self.images[keep], self.nominal_images[keep],
                              self.horizon, self.source)

    def images_of(self, perturbations: Sequence[str]) -> np.ndarray:
        """The pre-rollout images, (K, H, W, 3), of the samples that apply exactly this set.

        :param perturbations: the set, in order (empty for the nominal scene).
        """
        return self.images[[p == tuple(perturbations) for p in self.perturbations]]

    def names(self) -> list[str]:
        """Each sample's perturbation set as one name (``nominal``, ``a``, ``a+b``)."""
        return [similarity_label(self.catalog, p, "perturbation") for p in self.perturbations]


def _check_names(catalog: Catalog, names: Sequence[str], where: str) -> None:
    unknown = [n for n in names if n not in catalog.names]
    if unknown:
        raise DatasetError(f"exclude: {unknown} are not in the catalog of {where} "
                           f"({', '.join(catalog.names)})")


def _usable(records: Iterable[RolloutRecord], exclude: set[str]) -> list[RolloutRecord]:
    return [r for r in records if r.status == RolloutStatus.COMPLETED.value
            and not exclude.intersection(r.perturbations)]


def _seed_from_campaign(images: SceneImages, records: list[RolloutRecord]) -> None:
    """Put a campaign's cached pre-rollout images (successful steps) into the scene cache."""
    obs = ObservationCache(images.source.directory / "observations")
    for r in records:
        if r.agent_step is None or not r.success:
            continue
        name = SceneImages.name(r.perturbations, r.seed)
        if images.cache.get(name) is None:
            cached = obs.get(f"{r.agent_step:06d}")
            if cached is not None:
                images.put(r.perturbations, r.seed, cached)


def load_dataset(directory: str | Path, exclude: Sequence[str] = (), progress: bool = True,
                 renderer: Renderer | None = None) -> RolloutDataset:
    """Read every completed rollout of a campaign or sweep as a sample (images rendered once).

    :param directory: the campaign or sweep directory.
    :param exclude: perturbation names held out entirely: rollouts applying any are dropped.
    :param progress: show a progress bar while images are rendered.
    :param renderer: render missing images with this instead of the directory's world (tests).
    :raises DatasetError: for an unknown directory, unknown excluded names, or no samples.
    """
    source = open_source(directory)
    _check_names(source.catalog, exclude, str(directory))
    with RolloutStore(source.directory / STORE_FILE) as store:
        records = _usable(store.records(), set(exclude))
    if not records:
        raise DatasetError(f"--data {directory}: no completed rollouts"
                           + (f" without {list(exclude)}" if exclude else "")
                           + "; run the sweep or campaign first")
    images = SceneImages(source, renderer)
    if source.kind == "campaign":
        _seed_from_campaign(images, records)
    perts, seeds, texts, success, imgs, nominal = [], [], [], [], [], []
    try:
        bar = ProgressReporter(len(records), "scene images", enabled=progress, every=100)
        for i, r in enumerate(records):
            perts.append(tuple(r.perturbations))
            seeds.append(r.seed)
            texts.append(perturbation_text(source.catalog, r.perturbations))
            success.append(bool(r.success))
            imgs.append(images.get(r.perturbations, r.seed))
            nominal.append(images.get((), r.seed))
            bar.update(i + 1)
        bar.close()
    finally:
        images.close()
    return RolloutDataset(source.catalog, perts, np.asarray(seeds, dtype=np.int64), texts,
                          np.asarray(success, dtype=bool), np.stack(imgs), np.stack(nominal),
                          source.horizon, str(source.directory))
