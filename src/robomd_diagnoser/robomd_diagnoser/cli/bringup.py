"""``robomd bringup``: start a simulated campaign's ROS 2 graph without ``ros2 launch``."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bringup", help="run a simulated campaign through the ROS 2 node graph",
        description="Starts the nodes of launch/sim_campaign.launch.py (one sim bridge per "
                    "campaign worker and the diagnoser) as separate processes with the same "
                    "parameters, waits for the campaign to finish, and stops them. Ctrl-C stops "
                    "every node cleanly; rerun the same command to resume the campaign.")
    p.add_argument("campaign", help="campaign YAML, e.g. config/campaigns/lift_bc.yaml")
    p.add_argument("--out", help="campaign directory (default: the campaign's output)")
    p.add_argument("--domain-id", type=int, default=None,
                   help="ROS_DOMAIN_ID of the graph (default: 77, localhost-only discovery)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from robomd_diagnoser.campaign import CampaignError, CampaignLock
    from robomd_diagnoser.config import ConfigError, load_campaign
    from robomd_diagnoser.ros.bringup import SIM_ENV, Graph, sim_campaign_nodes

    try:
        config = load_campaign(args.campaign)
        CampaignLock(Path(args.out or config.output)).release()  # start no node into a busy dir
    except (ConfigError, CampaignError, FileNotFoundError) as exc:
        print(f"robomd bringup: {exc}")
        return 2
    env = dict(SIM_ENV)
    if args.domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(args.domain_id)
    print(f"robomd bringup: ROS_DOMAIN_ID={env['ROS_DOMAIN_ID']}, localhost discovery",
          flush=True)
    return Graph(sim_campaign_nodes(config, args.campaign, args.out), env).run(
        "diagnoser", "robomd bringup")
