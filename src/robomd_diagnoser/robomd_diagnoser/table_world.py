"""TableWorld: a synthetic replay world for tests and benchmarks, never for real diagnoses.

It rolls nothing out. Each "rollout" is a Bernoulli draw from a table of per-perturbation failure
rates, normally a ground-truth sweep's ``failure_rates.json`` (see :mod:`robomd_diagnoser.sweep`),
so agents can be compared cheaply and honestly on outcomes sampled from measured rates. A campaign
uses it only when its config says ``world: {type: table}``.

Combining perturbations: with nominal failure rate ``p0`` and single-perturbation rates ``p_a``,
a set ``S`` fails with ``1 - (1 - p0) * prod_{a in S} min(1, (1 - p_a) / (1 - p0))`` (each
perturbation independently removes part of the nominal success chance).

The observation is a black ``image_size`` square divided into a grid with one cell per catalog
perturbation; the cells of applied perturbations are white.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from robomd_diagnoser.catalog import Catalog
from robomd_diagnoser.world import Outcome, RolloutResult, RolloutStatus, StepCallback

if TYPE_CHECKING:
    from robomd_diagnoser.config import WorldSettings


class TableWorld:
    """A World whose outcomes are drawn from a failure-rate table (synthetic; see module doc).

    :param catalog: the perturbations (action order).
    :param rates: failure rate in [0, 1] of each catalog perturbation applied alone.
    :param nominal_rate: failure rate of the unperturbed scene.
    :param image_size: side of the square observation in pixels.
    :param rollout_seconds: wall-clock time each rollout takes (to exercise progress and crashes).
    :param abort_rate: probability that a rollout is aborted (not judged), to exercise retries.
    """

    def __init__(self, catalog: Catalog, rates: Mapping[str, float], *, nominal_rate: float = 0.0,
                 image_size: int = 36, rollout_seconds: float = 0.0,
                 abort_rate: float = 0.0) -> None:
        missing = [n for n in catalog.names if n not in rates]
        if missing:
            raise ValueError(f"TableWorld: no failure rate for {missing}; the rate table must "
                             f"cover every perturbation of catalog {catalog.source}")
        for name, p in [("nominal", nominal_rate), *rates.items(), ("abort_rate", abort_rate)]:
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"TableWorld: rate of {name!r} must be in [0, 1], got {p}")
        self.catalog = catalog
        self.rates = {n: float(rates[n]) for n in catalog.names}
        self.nominal_rate = float(nominal_rate)
        self.image_size = image_size
        self.rollout_seconds = rollout_seconds
        self.abort_rate = abort_rate
        self._grid = math.ceil(math.sqrt(len(catalog)))
        if image_size < self._grid:
            raise ValueError(f"TableWorld: image_size {image_size} is too small for "
                             f"{len(catalog)} perturbations")
        self._applied: tuple[str, ...] = ()
        self._success: bool | None = None

    def failure_probability(self, perturbations: Sequence[str]) -> float:
        """The failure probability of a perturbation set (see the module doc).

        :param perturbations: catalog names.
        """
        s0 = 1.0 - self.nominal_rate
        if s0 <= 0.0:
            return 1.0
        survive = s0
        for name in set(perturbations):
            survive *= min(1.0, (1.0 - self.rates[name]) / s0)
        return 1.0 - survive

    def reset(self, seed: int) -> None:
        """Back to the nominal scene (nothing here depends on the seed)."""
        self._applied = ()
        self._success = None

    def apply(self, perturbations: Sequence[str]) -> None:
        """Set the applied perturbations (unknown names raise CatalogError)."""
        self._applied = tuple(self.catalog[n].name for n in perturbations)

    def observe(self) -> np.ndarray:
        """The grid image of the applied perturbations (HxWx3 uint8)."""
        img = np.zeros((self.image_size, self.image_size, 3), dtype=np.uint8)
        cell = self.image_size // self._grid
        for name in self._applied:
            row, col = divmod(self.catalog.index(name), self._grid)
            img[row * cell:(row + 1) * cell, col * cell:(col + 1) * cell] = 255
        return img

    def execute(self, max_steps: int, seed: int, on_step: StepCallback | None = None,
                should_stop: Callable[[], bool] | None = None) -> RolloutResult:
        """Draw the outcome of the current set with ``seed``; takes ``rollout_seconds``."""
        start = time.monotonic()
        if self.rollout_seconds:
            time.sleep(self.rollout_seconds)
        if should_stop is not None and should_stop():
            return RolloutResult(RolloutStatus.CANCELLED, 0, time.monotonic() - start, "stopped")
        rng = np.random.default_rng([seed, *sorted(self.catalog.index(n) for n in self._applied)])
        if rng.random() < self.abort_rate:
            self._success = None
            return RolloutResult(RolloutStatus.ABORTED, 0, time.monotonic() - start,
                                 "synthetic abort")
        self._success = bool(rng.random() >= self.failure_probability(self._applied))
        steps = int(rng.integers(max(1, max_steps // 3), max(2, 2 * max_steps // 3))) \
            if self._success else max_steps
        if on_step is not None:
            on_step(steps, time.monotonic() - start)
        return RolloutResult(RolloutStatus.COMPLETED, steps, time.monotonic() - start)

    def judge(self) -> Outcome:
        """The outcome drawn by the last :meth:`execute`."""
        if self._success is None:
            raise RuntimeError("TableWorld.judge: no completed rollout to judge")
        return Outcome(self._success, 1.0, "table draw")

    def close(self) -> None:
        """Nothing to release."""


def build_table_world(settings: WorldSettings) -> TableWorld:
    """The ``table`` world type: replays the failure rates of ``settings.failure_rates``."""
    from robomd_diagnoser.analysis import load_ground_truth
    from robomd_diagnoser.catalog import load_catalog

    truth = load_ground_truth(settings.failure_rates)
    return TableWorld(load_catalog(settings.catalog), truth.rates,
                      nominal_rate=truth.nominal or 0.0, image_size=settings.image_size,
                      rollout_seconds=settings.rollout_seconds)
