"""Measure the success detector against robosuite's ground truth on the fake hardware.

Each rollout runs exactly as on the robot: the executor's loop (:class:`RolloutRunner`, safety
envelope, ``speedL`` into the simulated UR5e) for the full horizon; the detector then judges from
the end state and the start/end camera frames, and robosuite's Lift check (cube 4 cm above its
rest at any step) is the truth. Policies: the scripted expert, clean and with action noise (the
noise produces real failures); perturbations: nominal plus sizes, colours and lights that move
either rule. Run::

    python -m robomd_ur5e.agreement --seeds 4 --json runs/detector_agreement.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path

from robomd_ur5e.bringup import load_parameters
from robomd_ur5e.detector import COMBINE_MODES, Detector, RobotEnd
from robomd_ur5e.fake import FakeGripper, FakeRTDEControl, FakeRTDEReceive, make_fake_robot
from robomd_ur5e.runner import ExecutorSettings, RolloutRunner
from robomd_ur5e.safety import ActionMapper, SafetyEnvelope, SafetyLimits

PERTURBATIONS = ("", "cube_large", "cube_small", "cube_bar", "cube_blue", "table_red",
                 "light_green", "light_red")
NOISE = (0.0, 0.6)


def _detectors() -> dict[str, Detector]:
    from robomd_ur5e.success_detector_node import detector_from

    params = load_parameters("detector")
    return {mode: detector_from({**params, "mode": mode}) for mode in COMBINE_MODES}


def measure(seeds: int, horizon: int = 80, camera_size: int = 84) -> dict:
    """Run the rollouts and compare every detector mode with the ground truth.

    :param seeds: rollouts per (policy, perturbation) pair.
    :param horizon: control steps per rollout.
    :param camera_size: simulated camera size (the vision rule's frames).
    """
    from robomd_sim_bridge.experts import make_expert

    robot = make_fake_robot("lift", camera_size)
    world = robot.world
    fake = load_parameters("fake_hardware")
    limits = SafetyLimits(tuple(fake["workspace_min"]), tuple(fake["workspace_max"]),
                          fake["max_speed"], fake["max_accel"], fake["max_rot_speed"],
                          fake["max_rot_accel"])
    detectors = _detectors()
    rows = []
    start = time.monotonic()
    for noise in NOISE:
        for pert in PERTURBATIONS:
            for seed in range(seeds):
                policy = make_expert(world, action_noise=noise, seed=seed)
                runner = RolloutRunner(
                    FakeRTDEControl(robot), FakeRTDEReceive(robot), FakeGripper(robot), policy,
                    SafetyEnvelope(limits), ActionMapper(0.05, 0.5, robot.period),
                    lambda: (robot.render(camera_size), 0.0),
                    ExecutorSettings(rate=1 / robot.period, home_q=tuple(fake["home_q"]),
                                     home_tolerance=fake["home_tolerance"]),
                    sleep=lambda _s: None)
                runner.arm()
                robot.reset(1000 + seed)
                robot.apply([pert] if pert else [])
                first = robot.render(camera_size)
                truth = [False]

                def on_step(_step: int, _t: float, truth=truth) -> None:
                    truth[0] = truth[0] or bool(world.spec.success(world))

                result = runner.run(horizon, on_step=on_step)
                last = robot.render(camera_size)
                end = result.end
                robot_end = RobotEnd(end.tcp_pose[2], end.lowest_tcp_z, end.gripper.width,
                                     end.gripper.object_detected)
                verdicts = {m: d.judge(robot_end, first, last).success
                            for m, d in detectors.items()}
                rows.append({"noise": noise, "perturbation": pert or "nominal", "seed": seed,
                             "status": result.status.value, "truth": truth[0], **verdicts})
    summary = {}
    for mode in COMBINE_MODES:
        decided = [r for r in rows if r[mode] is not None]
        agree = sum(r[mode] == r["truth"] for r in decided)
        confusion = Counter(f"{'S' if r['truth'] else 'F'}->{'S' if r[mode] else 'F'}"
                            for r in decided)
        summary[mode] = {"agreement": agree / max(1, len(decided)),
                         "agree": agree, "decided": len(decided), "rollouts": len(rows),
                         "confusion": dict(sorted(confusion.items()))}
    return {"rollouts": rows, "summary": summary, "truth_successes": sum(r["truth"] for r in rows),
            "seconds": round(time.monotonic() - start, 1)}


def main(argv: list[str] | None = None) -> int:
    """Command line: print the per-mode agreement table (and write the rows as JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=4, help="rollouts per policy/perturbation")
    parser.add_argument("--horizon", type=int, default=80, help="control steps per rollout")
    parser.add_argument("--json", type=Path, help="write every rollout's verdicts here")
    args = parser.parse_args(argv)
    data = measure(args.seeds, args.horizon)
    n = len(data["rollouts"])
    print(f"{n} rollouts ({data['truth_successes']} successes by ground truth) in "
          f"{data['seconds']} s")
    print(f"{'mode':<8} {'agreement':>9} {'decided':>9}  confusion (truth->verdict)")
    for mode, s in data["summary"].items():
        print(f"{mode:<8} {s['agreement']:>9.3f} {s['decided']:>5}/{n:<3}  {s['confusion']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(data, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
