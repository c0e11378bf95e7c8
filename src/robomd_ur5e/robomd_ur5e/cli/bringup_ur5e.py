"""``robomd bringup-ur5e``: start the real-robot campaign's ROS 2 graph without ``ros2 launch``."""

from __future__ import annotations

import argparse

from robomd_diagnoser.console_spec import add_console_arguments
from robomd_diagnoser.progress import add_progress_argument


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bringup-ur5e", help="run a UR5e campaign through the ROS 2 node graph",
        description="Starts the nodes of robomd_ur5e's diagnose.launch.py (camera, policy "
                    "executor, success detector, operator prompt, diagnoser) as separate "
                    "processes with the same parameters, waits for the campaign to finish and "
                    "stops them. Answer the prompts with `robomd operator` in another terminal "
                    "(it also arms the executor) or in the browser with --console. Ctrl-C stops "
                    "every node; rerun to resume.")
    p.add_argument("campaign", help="campaign YAML with world type real, e.g. "
                                    "config/campaigns/real_lift.yaml")
    p.add_argument("--robot-ip", default="", help="the UR controller's IP address (required "
                                                  "unless --fake-hardware)")
    p.add_argument("--camera", default="0", help="camera: device index, video file or URL")
    p.add_argument("--policy", default="",
                   help="policy spec (default: the campaign's); module:<pkg.mod:fn> imports "
                        "and runs that Python code, so a spec is trusted input")
    p.add_argument("--catalog", default="", help="catalog for the operator's instructions "
                                                 "(default: the campaign's)")
    p.add_argument("--mock-hardware", "--fake-hardware", dest="fake_hardware",
                   action="store_true",
                   help="dry run: the simulated UR5e instead of the robot (--fake-hardware: the "
                        "older name, as in the UR driver)")
    p.add_argument("--out", help="campaign directory (default: the campaign's output)")
    add_console_arguments(p, "the operator console in the browser (camera, prompts, "
                             "done/skip/abort, arming, progress)")
    add_progress_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os

    from robomd_diagnoser.config import ConfigError, load_campaign
    from robomd_diagnoser.console_spec import console_spec
    from robomd_diagnoser.ros.bringup import Graph
    from robomd_diagnoser.ros.status_watch import campaign_progress
    from robomd_ur5e.bringup import (
        domain_env,
        domain_text,
        preview_twin_node,
        ur5e_campaign_nodes,
    )

    try:
        config = load_campaign(args.campaign)
        specs = ur5e_campaign_nodes(config, args.campaign,
                                    robot_ip=args.robot_ip, camera=args.camera,
                                    policy=args.policy, catalog=args.catalog,
                                    use_fake_hardware=args.fake_hardware, out_dir=args.out)
        console = console_spec(args, args.out or str(config.output), False,
                               "robomd bringup-ur5e")
        specs += [console, preview_twin_node(config.task)] if console else []
    except (ConfigError, FileNotFoundError) as exc:
        print(f"robomd bringup-ur5e: {exc}")
        return 2
    graph = Graph(specs, domain_env(args.fake_hardware))
    print(f"robomd bringup-ur5e: {domain_text(args.fake_hardware, graph.env)}", flush=True)
    os.environ.update(graph.env)  # the progress watch joins the graph's domain
    with campaign_progress(config.budget, config.name, not args.no_progress):
        return graph.run("diagnoser", "robomd bringup-ur5e")
