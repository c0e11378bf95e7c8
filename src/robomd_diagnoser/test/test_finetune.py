"""Failure-guided fine-tuning: mode choice, budgets, fine-tuned weights, evaluation and report."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from robomd_diagnoser.catalog import Catalog, Perturbation, load_catalog
from robomd_diagnoser.learning.data import save_demo
from robomd_diagnoser.learning.finetune import (
    BEFORE,
    EvalPlan,
    FinetuneError,
    FinetuneRequest,
    allocate,
    compare,
    evaluate_policy,
    finetune_policy,
    load_diagnosis,
    replay_sample,
    run_finetune,
    summarise,
    top_modes,
    wasserstein_to_ideal,
)
from robomd_diagnoser.learning.finetune_report import write_html
from robomd_diagnoser.learning.train import TrainConfig, train_bc
from robomd_diagnoser.learning.weights import load_bc
from robomd_diagnoser.paths import find_config
from robomd_diagnoser.world import Outcome, RolloutResult, RolloutStatus

CATALOG = Catalog("toy", tuple(Perturbation(n, f"make it {n}", "color", "cube", (1, 0, 0, 1))
                               for n in ("red", "green", "blue", "dark")))


def ranking(failures: dict[str, int]) -> list[dict]:
    return [{"name": n, "failures": f, "trials": 2, "p_fail": 0.25} for n, f in failures.items()]


def test_top_modes_prefer_observed_failures_in_rank_order():
    r = ranking({"red": 0, "green": 2, "blue": 0, "dark": 1})
    assert top_modes(r, 2) == ["green", "dark"]
    assert top_modes(r, 3) == ["green", "dark", "red"]
    with pytest.raises(FinetuneError, match="--top must be in 1..4"):
        top_modes(r, 5)


def test_strategies_share_the_budget():
    targeted = allocate("targeted", ["dark", "blue"], CATALOG, 5)
    assert targeted == {"dark": 3, "blue": 2}
    uniform = allocate("uniform", ["dark", "blue"], CATALOG, 6, seed=1)
    assert sum(uniform.values()) == 6 and set(uniform) == set(CATALOG.names)
    small = allocate("uniform", ["dark"], CATALOG, 3, seed=0)
    assert sum(small.values()) == 3 and len(small) == 3
    assert allocate("uniform", ["dark"], CATALOG, 3, seed=0) == small  # reproducible
    with pytest.raises(FinetuneError, match="--strategy 'random'"):
        allocate("random", ["dark"], CATALOG, 3)


def test_wasserstein_to_ideal_is_the_mean_failure_rate():
    assert wasserstein_to_ideal([0.0, 0.0, 0.0]) == 0.0
    assert wasserstein_to_ideal([0.5, 0.1, 0.0, 0.2]) == pytest.approx(0.2)


# ---------------------------------------------------------------------- a tiny BC to fine-tune

def write_demos(root: Path, n: int, seed: int, size: int = 32) -> None:
    rng = np.random.default_rng(seed)
    for i in range(n):
        t = 6
        save_demo(root / f"ep{seed}_{i}.npz", {
            "image": rng.integers(0, 255, (t, size, size, 3), dtype=np.uint8),
            "eef_pos": rng.normal(size=(t, 3)).astype(np.float32),
            "gripper": rng.uniform(size=(t, 1)).astype(np.float32),
            "action": rng.uniform(-1, 1, (t, 7)).astype(np.float32)}, seed=i)


@pytest.fixture(scope="module")
def tiny_parent(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("parent")
    write_demos(root / "orig", 3, seed=0)
    cfg = TrainConfig(epochs=1, batch_size=8, channels=(4, 4), hidden=8, val_fraction=0.0,
                      color_aug={"brightness": 0.1})
    train_bc(root / "orig", root / "parent.pt", cfg, log=lambda _: None)
    return root / "parent.pt"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_finetune_starts_from_the_parent_and_never_overwrites_it(tiny_parent, tmp_path):
    before = digest(tiny_parent)
    write_demos(tmp_path / "new", 2, seed=1)
    info = {"parent": str(tiny_parent), "top_modes": ["dark"], "demos": {"dark": 2}}
    out = tmp_path / "v2" / "policy_v2.pt"
    cfg = TrainConfig(epochs=1, batch_size=8, val_fraction=0.0, lr=1e-3)
    finetune_policy(tiny_parent, tmp_path / "new", out, cfg, info, log=lambda _: None)
    assert digest(tiny_parent) == before
    parent_model, parent_meta = load_bc(tiny_parent)
    model, meta = load_bc(out)
    assert meta["finetune"] == info
    assert meta["training"]["init"] == str(tiny_parent)
    assert meta["channels"] == [4, 4] and meta["hidden"] == 8  # the parent's architecture
    assert meta["eef_mean"] == parent_meta["eef_mean"]  # and its normalisation
    changed = [k for k, v in model.state_dict().items()
               if not np.allclose(v, parent_model.state_dict()[k])]
    assert changed
    assert json.loads(out.with_suffix(".json").read_text())["top_modes"] == ["dark"]
    # resume: same settings keep the file; other settings or the parent's path are refused
    finetune_policy(tiny_parent, tmp_path / "new", out, cfg, info, log=lambda _: None)
    with pytest.raises(FinetuneError, match="other settings"):
        finetune_policy(tiny_parent, tmp_path / "new", out, cfg, {**info, "top_modes": []})
    with pytest.raises(FinetuneError, match="overwrite the parent"):
        finetune_policy(tiny_parent, tmp_path / "new", tiny_parent, cfg, info)


def test_replay_sample_draws_from_the_original_demos(tmp_path):
    write_demos(tmp_path / "orig", 5, seed=3)
    picked = replay_sample(tmp_path / "orig", 3, seed=0)
    assert len(picked) == 3 and len(set(picked)) == 3
    assert replay_sample(tmp_path / "orig", 3, seed=0) == picked
    with pytest.raises(FinetuneError, match="--original-demos"):
        replay_sample(tmp_path / "empty", 3)


# --------------------------------------------------------------------- evaluation and report

class ToyWorld:
    """Fails under ``dark`` always and under ``blue`` on odd seeds; ``fixed`` never fails."""

    catalog = CATALOG

    def __init__(self, fixed: bool) -> None:
        self.fixed = fixed
        self.perts: tuple[str, ...] = ()
        self.ok = True

    def reset(self, seed: int) -> None:
        self.perts = ()

    def apply(self, perturbations) -> None:
        self.perts = tuple(perturbations)

    def observe(self) -> np.ndarray:
        return np.zeros((4, 4, 3), np.uint8)

    def execute(self, max_steps, seed, on_step=None, should_stop=None) -> RolloutResult:
        self.ok = self.fixed or not ("dark" in self.perts or ("blue" in self.perts and seed % 2))
        return RolloutResult(RolloutStatus.COMPLETED, 5, 0.01)

    def judge(self) -> Outcome:
        return Outcome(self.ok)

    def close(self) -> None:
        pass


def test_before_after_evaluation_and_report(tmp_path):
    plan = EvalPlan(CATALOG, "unused.yaml", rollouts=4, seed=0, robot="UR5e", camera_size=84,
                    horizon=20)
    modes = ["dark", "blue"]
    results = {}
    for label, fixed in ((BEFORE, False), ("targeted", True), ("uniform", False)):
        rows = evaluate_policy(plan, f"policy-{label}", tmp_path / label,
                               world_factory=lambda fixed=fixed: ToyWorld(fixed))
        results[label] = {"policy": f"policy-{label}", **summarise(rows, modes)}
    before = results[BEFORE]
    assert before["nominal"]["rate"] == 1.0
    assert before["top_modes"]["successes"] == 2 and before["top_modes"]["n"] == 8
    lo, hi = before["top_modes"]["lo"], before["top_modes"]["hi"]
    assert lo < 0.25 < hi
    assert before["failure_distribution"] == {"red": 0.0, "green": 0.0, "blue": 0.5, "dark": 1.0}
    assert before["wasserstein_to_ideal"] == pytest.approx(1.5 / 4)
    assert results["targeted"]["wasserstein_to_ideal"] == 0.0
    summary = compare(results)
    assert summary["success_under_top_modes_before"] == 0.25
    assert summary["success_under_top_modes_targeted"] == 1.0
    assert summary["targeted_vs_uniform_gain"] == 0.75
    assert (tmp_path / BEFORE / "failure_rates.json").is_file()
    result = {"campaign": "c", "task": "toy", "parent": "p.pt", "top_modes": modes, "budget": 4,
              "evaluation": {"rollouts": 4, "seed": 0, "perturbations": CATALOG.names,
                             "interval": "wilson 95%"},
              "strategies": {"targeted": {"new_episodes": 4, "demos": {"dark": 2, "blue": 2},
                                          "replay_episodes": 4, "replay_source": "x",
                                          "epochs": 1, "parent": "p.pt"}},
              "policies": results, "summary": summary}
    page = write_html(result, tmp_path).read_text()
    assert page.count("data:image/png;base64,") == 2 and "+0.750" in page


def test_evaluation_of_changed_weights_is_refused(tmp_path):
    plan = EvalPlan(CATALOG, "unused.yaml", rollouts=1, seed=0, robot="UR5e", camera_size=84,
                    horizon=20)
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"one")
    evaluate_policy(plan, "bc", tmp_path / "ev", world_factory=lambda: ToyWorld(False),
                    weights=weights)
    weights.write_bytes(b"two")
    with pytest.raises(FinetuneError, match="other weights"):
        evaluate_policy(plan, "bc", tmp_path / "ev", world_factory=lambda: ToyWorld(False),
                        weights=weights)


def test_diagnosis_errors_name_the_fix(tmp_path):
    with pytest.raises(FinetuneError, match="no diagnosis.json"):
        load_diagnosis(tmp_path)
    catalog = load_catalog(find_config("catalogs/lift.yaml"))
    (tmp_path / "diagnosis.json").write_text(json.dumps({
        "task": "lift", "policy": "torchscript:x.pt", "catalog": [p.to_dict() for p in catalog],
        "campaign": {"catalog": "c.yaml", "world": {"type": "sim"}},
        "diagnosis": {"modes": []}}))
    with pytest.raises(FinetuneError, match="needs BC weights"):
        load_diagnosis(tmp_path)


# ----------------------------------------------------------------------- end to end, simulated

@pytest.mark.slow
def test_end_to_end_in_simulation(tiny_parent, tmp_path):
    """Tiny sizes: 1 mode, 2 expert demos, 1 epoch, 2 rollouts per scene (~1-2 min)."""
    pytest.importorskip("robosuite")
    root = tmp_path / "parent"
    write_demos(root, 2, seed=5, size=84)
    parent = tmp_path / "parent84.pt"
    train_bc(root, parent, TrainConfig(epochs=1, batch_size=8, channels=(4, 4), hidden=8,
                                       val_fraction=0.0), log=lambda _: None)
    catalog_path = find_config("catalogs/lift.yaml")
    catalog = load_catalog(catalog_path)
    campaign = tmp_path / "campaign"
    campaign.mkdir()
    modes = [{"name": n, "failures": int(n == "table_red"), "trials": 1} for n in catalog.names]
    (campaign / "diagnosis.json").write_text(json.dumps({
        "task": "lift", "policy": f"bc:{parent}", "catalog": [p.to_dict() for p in catalog],
        "campaign": {"catalog": str(catalog_path),
                     "world": {"type": "sim", "robot": "UR5e", "camera_size": 84,
                               "horizon": 80}},
        "diagnosis": {"modes": modes}}))
    before = digest(parent)
    req = FinetuneRequest(top=1, demos_per_mode=2, replay=0, epochs=1, eval_rollouts=2,
                          eval_all=False)
    result = run_finetune(load_diagnosis(campaign), tmp_path / "ft", req, log=lambda _: None)
    assert digest(parent) == before
    assert result["top_modes"] == ["table_red"]
    assert len(list((tmp_path / "ft" / "demos" / "targeted" / "table_red").glob("*.npz"))) == 2
    _, meta = load_bc(tmp_path / "ft" / "targeted" / "policy_v2.pt")
    assert meta["finetune"]["parent"] == str(parent)
    assert meta["finetune"]["demos"] == {"table_red": 2}
    for label in (BEFORE, "targeted"):
        res = result["policies"][label]
        assert res["nominal"]["n"] == 2 and res["top_modes"]["n"] == 2
    assert json.loads((tmp_path / "ft" / "finetune.json").read_text())["budget"] == 2
