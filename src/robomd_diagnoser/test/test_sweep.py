"""Tests of ground-truth sweeps: jobs, resume, settings checks, reports, and a real Lift sweep."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from robomd_diagnoser.catalog import Catalog, CatalogError, Perturbation
from robomd_diagnoser.cli.main import main
from robomd_diagnoser.paths import find_config
from robomd_diagnoser.pools import InProcessPool
from robomd_diagnoser.store import RolloutStore
from robomd_diagnoser.sweep import (
    SweepError,
    SweepSettings,
    check_settings,
    run_jobs,
    sweep_jobs,
    sweep_table,
    write_reports,
)
from robomd_diagnoser.world import Outcome, RolloutResult, RolloutStatus

CATALOG = Catalog("toy", (Perturbation("dark", "Make it dark", "light", "light", (0, 0, 0)),
                          Perturbation("blue", "Make it blue", "color", "cube", (0, 0, 1, 1))))


class ToyWorld:
    """Always fails in the dark, fails odd seeds under blue, never fails nominally."""

    catalog = CATALOG

    def __init__(self) -> None:
        self.perts: tuple[str, ...] = ()
        self.ok = True
        self.executed = 0

    def reset(self, seed: int) -> None:
        self.perts = ()

    def apply(self, perturbations) -> None:
        self.perts = tuple(perturbations)

    def observe(self) -> np.ndarray:
        return np.zeros((4, 4, 3), np.uint8)

    def execute(self, max_steps, seed, on_step=None, should_stop=None) -> RolloutResult:
        self.executed += 1
        self.ok = "dark" not in self.perts and not ("blue" in self.perts and seed % 2)
        return RolloutResult(RolloutStatus.COMPLETED, 5 if self.ok else max_steps, 0.01)

    def judge(self) -> Outcome:
        return Outcome(self.ok)

    def close(self) -> None:
        pass


class InterruptAfter(InProcessPool):
    """Raises KeyboardInterrupt (as Ctrl-C would) after ``n`` results."""

    def __init__(self, world, n: int) -> None:
        super().__init__(world)
        self.n = n

    def map_unordered(self, jobs):
        for i, res in enumerate(super().map_unordered(jobs)):
            if i == self.n:
                raise KeyboardInterrupt
            yield res


def test_jobs_use_the_same_seeds_for_every_perturbation():
    jobs = sweep_jobs(CATALOG, 3, seed=10, max_steps=50, video_dir=Path("v"))
    assert len(jobs) == 9 and len({j.key for j in jobs}) == 9
    assert [j.key for j in jobs[:3]] == ["sweep/nominal/0", "sweep/dark/0", "sweep/blue/0"]
    by_set: dict[tuple, list[int]] = {}
    for j in jobs:
        by_set.setdefault(j.perturbations, []).append(j.seed)
    assert by_set == {(): [10, 11, 12], ("dark",): [10, 11, 12], ("blue",): [10, 11, 12]}
    assert jobs[2].video == str(Path("v") / "blue" / "0.mp4")
    assert all(j.max_steps == 50 for j in jobs)


def test_a_perturbation_named_nominal_is_refused():
    cat = Catalog("toy", (Perturbation("nominal", "x", "light", "light", (0, 0, 0)),))
    with pytest.raises(CatalogError, match="'nominal'"):
        SweepSettings.of(cat, "expert", 0, 10, 32, "UR5e")


def test_interrupted_sweep_resumes_with_each_key_once(tmp_path):
    jobs = sweep_jobs(CATALOG, 4, 0, 20)
    world = ToyWorld()
    with RolloutStore(tmp_path / "r.sqlite") as store:
        with pytest.raises(KeyboardInterrupt):
            run_jobs(store, InterruptAfter(world, 5), jobs, progress=False)
        assert store.count() == 5
        assert run_jobs(store, InProcessPool(world), jobs, limit=2, progress=False) == 2
        assert run_jobs(store, InProcessPool(world), jobs, progress=False) == 5
        assert run_jobs(store, InProcessPool(world), jobs, progress=False) == 0
        keys = [r.key for r in store.records()]
        assert sorted(keys) == sorted(j.key for j in jobs)
    assert world.executed == 12 + 1  # the rollout interrupted before it was stored ran again


def test_table_and_reports(tmp_path):
    jobs = sweep_jobs(CATALOG, 4, 0, 20)
    with RolloutStore(tmp_path / "r.sqlite") as store:
        run_jobs(store, InProcessPool(ToyWorld()), jobs, progress=False)
        rows = sweep_table(store, CATALOG, 4)
        fewer = sweep_table(store, CATALOG, 2)
    assert [r.name for r in rows] == ["nominal", "dark", "blue"]
    nominal, dark, blue = (r.rate for r in rows)
    assert (nominal.n, nominal.failures, dark.failures, blue.failures) == (4, 0, 4, 2)
    assert [r.above_nominal for r in rows] == [False, True, False]
    assert [r.rate.n for r in fewer] == [2, 2, 2]
    paths = write_reports(rows, tmp_path / "out", {"task": "toy", "policy": "p", "rollouts": 4})
    assert [p.name for p in paths] == ["failure_rates.csv", "failure_rates.json",
                                       "failure_rates.png"]
    with paths[0].open() as f:
        table = list(csv.DictReader(f))
    assert table[1]["name"] == "dark" and table[1]["failures"] == "4"
    assert table[1]["above_nominal"] == "True"
    data = json.loads(paths[1].read_text())
    assert data["nominal"]["n"] == 4 and data["interval"] == "wilson"
    assert data["perturbations"][1]["failure_rate"] == 0.5
    assert data["perturbations"][1]["lo"] == pytest.approx(0.15003, abs=1e-4)
    assert paths[2].read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(("changed", "match"), [
    ({"seed": 1}, "seed: stored 0, now 1"),
    ({"policy": "bc"}, "policy"),
    ({"catalog": tuple(p.to_dict() for p in CATALOG.subset(["dark"]))}, "catalog contents"),
])
def test_resuming_with_other_settings_is_refused(tmp_path, changed, match):
    base = SweepSettings.of(CATALOG, "expert", 0, 100, 32, "UR5e")
    with RolloutStore(tmp_path / "r.sqlite") as store:
        check_settings(store, base)
        check_settings(store, base)  # same settings: fine
        other = SweepSettings(**{**base.__dict__, **changed})
        with pytest.raises(SweepError, match=match):
            check_settings(store, other)


# --- the real simulated Lift world -------------------------------------------------------------


@pytest.fixture(scope="module")
def lift_subset(tmp_path_factory) -> Path:
    pytest.importorskip("robosuite")
    pytest.importorskip("robomd_sim_bridge.world")
    data = yaml.safe_load(find_config("catalogs/lift.yaml").read_text())
    data["perturbations"] = [p for p in data["perturbations"]
                             if p["name"] in ("cube_red", "cube_large")]
    path = tmp_path_factory.mktemp("catalog") / "lift2.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_lift_sweep_with_the_expert_is_resumable(lift_subset, tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["sweep", "--catalog", str(lift_subset), "--policy", "expert", "--rollouts", "2",
            "--camera-size", "32", "--horizon", "120", "--seed", "5", "--out", str(out),
            "--no-progress"]
    # Interrupted after 3 of the 6 rollouts (the job limit), keeping their videos.
    assert main(argv + ["--limit", "3", "--video"]) == 0
    with RolloutStore(out / "rollouts.sqlite") as store:
        first = store.records()
    assert len(first) == 3
    assert all((out / r.video).is_file() for r in first)
    assert "partial" in capsys.readouterr().out

    # Resumed with two worker processes: only the missing rollouts run.
    assert main(argv + ["--workers", "2"]) == 0
    with RolloutStore(out / "rollouts.sqlite") as store:
        records = store.records()
    assert records[:3] == first
    assert sorted(r.key for r in records) == sorted(
        f"sweep/{n}/{i}" for n in ("nominal", "cube_red", "cube_large") for i in (0, 1))
    assert {(r.perturbations, r.seed) for r in records} == {
        (p, s) for p in ((), ("cube_red",), ("cube_large",)) for s in (5, 6)}
    assert all(r.status == "completed" and r.steps <= 120 for r in records)
    nominal = [r for r in records if r.perturbations == ()]
    assert all(r.success for r in nominal)  # the scripted expert lifts the nominal cube

    # A finished sweep reruns without new rollouts and rewrites the same table.
    assert main(argv) == 0
    with RolloutStore(out / "rollouts.sqlite") as store:
        assert store.records() == records
    data = json.loads((out / "failure_rates.json").read_text())
    assert data["complete"] is True
    assert [p["name"] for p in data["perturbations"]] == ["cube_red", "cube_large"]
    assert all(p["n"] == 2 for p in [data["nominal"], *data["perturbations"]])

    # Other settings on the same directory are refused with the difference named.
    assert main([*argv[:-3], "--seed", "6", "--out", str(out)]) == 2
    assert "seed: stored 5, now 6" in capsys.readouterr().err


def test_a_space_sweep_is_written_as_a_ground_truth_with_levels(tmp_path):
    from robomd_diagnoser.catalog import parse_catalog
    from robomd_diagnoser.space_truth import load_space_truth
    from robomd_diagnoser.sweep import write_ground_truth

    space = parse_catalog({"task": "toy", "families": [
        {"name": "mass", "factor": "object_mass", "target": "cube", "values": [2, 20]},
        {"name": "noise", "factor": "action_noise", "values": [0.1, 0.5]}],
        "combinations": {"order": 2}})

    class SpaceWorld(ToyWorld):
        catalog = space

        def execute(self, max_steps, seed, on_step=None, should_stop=None) -> RolloutResult:
            # heavy cubes always fail; strong noise fails on odd seeds
            names = "+".join(self.perts)
            self.ok = "mass_20" not in names and not ("noise_0p5" in names and seed % 2)
            return RolloutResult(RolloutStatus.COMPLETED, 5, 0.01)

    jobs = sweep_jobs(space, 4, 0, 20)
    with RolloutStore(tmp_path / "r.sqlite") as store:
        run_jobs(store, InProcessPool(SpaceWorld()), jobs, progress=False)
        rows = sweep_table(store, space, 4)
    path = write_ground_truth(rows, tmp_path / "gt" / "toy.json", "toy_space", "robomd sweep x",
                              {"task": "toy", "rollouts": 4, "complete": True})
    truth = load_space_truth(path)
    assert truth.space == "toy_space" and truth.command == "robomd sweep x"
    assert len(truth.members) == len(space) == 8  # 4 singles + 4 pairs
    by_name = {m.name: m for m in truth.members}
    for member in space.space:
        got = by_name[member.name]
        assert got.levels == member.levels and got.trials == 4
        assert got.failures == (4 if "mass_20" in member.name
                                else 2 if "noise_0p5" in member.name else 0)
    data = json.loads(path.read_text())
    assert data["nominal"] == {"failures": 0, "trials": 4}
    assert data["settings"] == {"task": "toy", "rollouts": 4}
    reports = write_reports(rows, tmp_path / "out", {"task": "toy"})
    assert load_space_truth(reports[1]).members == truth.members  # the sweep's own JSON too
