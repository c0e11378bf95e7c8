"""``robomd eval-policy``: success rate of a policy in one scene (nominal or perturbed).

For every catalog perturbation at once, with stored results and intervals, use ``robomd sweep``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from robomd_diagnoser.cli import not_positive


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval-policy",
        help="roll a policy out N times in one scene and print its success rate",
        description="Rolls the policy out N times (rollout i uses seed S+i) in the nominal scene "
                    "or under the given cumulative perturbations, and prints the success rate "
                    "and the distribution of steps to success (to choose a horizon).")
    p.add_argument("--task", default="lift", help="task (default: %(default)s)")
    p.add_argument("--catalog", type=Path, help="catalog YAML instead of the task's")
    p.add_argument("--policy", default="bc",
                   help="policy spec: expert, bc, bc_state, torchscript:<path>, "
                        "module:<pkg.mod:fn>, bc:<weights>, bc_state:<weights>, "
                        "remote:<ws://host:port>, robomimic:<file.pth>, lerobot:<dir> "
                        "(default: %(default)s); module: imports and runs that Python code, so "
                        "a spec is trusted input")
    p.add_argument("--rollouts", type=int, default=20, help="default: %(default)s")
    p.add_argument("--perturb", nargs="*", default=[], metavar="NAME",
                   help="catalog perturbations applied together (default: nominal scene)")
    p.add_argument("--workers", type=int, default=1, help="parallel simulator processes "
                   "(default: %(default)s)")
    p.add_argument("--seed", type=int, default=1000, help="seed of rollout 0 "
                   "(default: %(default)s, apart from the demonstration seeds)")
    p.add_argument("--horizon", type=int, default=150, help="step limit (default: %(default)s)")
    p.add_argument("--camera-size", type=int, default=84, help="default: %(default)s")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from robomd_diagnoser.catalog import CatalogError, load_catalog
    from robomd_diagnoser.config import ConfigError, WorldSettings
    from robomd_diagnoser.jobs import RolloutJob, RolloutJobError
    from robomd_diagnoser.paths import find_config
    from robomd_diagnoser.policy import PolicyError
    from robomd_diagnoser.pools import make_pool
    from robomd_diagnoser.stats import wilson_interval

    def fail(msg: str) -> int:
        print(f"robomd eval-policy: error: {msg}", file=sys.stderr)
        return 2

    if error := not_positive(args, ("rollouts", "workers", "horizon", "camera_size")):
        return fail(error)
    try:
        catalog_path = args.catalog or find_config(f"catalogs/{args.task}.yaml")
        catalog = load_catalog(catalog_path)
        catalog.subset(args.perturb)  # raises CatalogError naming an unknown perturbation
        world = WorldSettings(catalog=str(Path(catalog_path).resolve()), policy=args.policy,
                              camera_size=args.camera_size, horizon=args.horizon
                              ).check(lambda f: f"--{f.replace('_', '-')}")
    except (CatalogError, ConfigError, FileNotFoundError) as exc:
        return fail(str(exc))
    jobs = [RolloutJob(f"eval/{i}", tuple(args.perturb), args.seed + i, args.horizon)
            for i in range(args.rollouts)]
    scene = " + ".join(args.perturb) or "nominal"
    success_steps: list[int] = []
    done = judged = 0
    try:
        with make_pool(world, min(args.workers, args.rollouts)) as pool:
            for res in pool.map_unordered(jobs):
                done += 1
                ok = bool(res.outcome and res.outcome.success)
                judged += res.outcome is not None
                if ok:
                    success_steps.append(res.result.steps)
                verdict = ("not judged" if res.outcome is None else
                           "success" if ok else "failure")
                print(f"[{done}/{len(jobs)}] seed {res.job.seed}: {verdict} in "
                      f"{res.result.steps} steps ({res.result.status.value}"
                      f"{': ' + res.result.reason if res.outcome is None else ''})", flush=True)
    except (RolloutJobError, PolicyError) as exc:
        return fail(str(exc))
    n_ok = len(success_steps)
    if judged:
        lo, hi = wilson_interval(n_ok, judged)
        print(f"{args.policy} on {catalog.task} / {scene}: success {n_ok}/{judged} "
              f"= {n_ok / judged:.2f} (95% Wilson interval [{lo:.2f}, {hi:.2f}])")
    if judged < len(jobs):  # aborted or unavailable: not the policy's failures
        print(f"{len(jobs) - judged} of {len(jobs)} rollouts did not complete and are not "
              "counted")
    if success_steps:
        q = np.percentile(success_steps, [50, 90, 100])
        print(f"steps to success: median {q[0]:.0f}, 90th percentile {q[1]:.0f}, max {q[2]:.0f}")
    return 0
