"""``robomd bringup``: start a simulated campaign's ROS 2 graph without ``ros2 launch``."""

from __future__ import annotations

import argparse

from robomd_diagnoser.console_spec import add_console_arguments, console_spec
from robomd_diagnoser.progress import add_progress_argument


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
                   help="ROS_DOMAIN_ID of the graph (default: the first free one from 77; "
                        "discovery and sockets stay on localhost either way)")
    add_console_arguments(p, "a read-only campaign view in the browser (robomd_ur5e's "
                             "console_node)")
    add_progress_argument(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from robomd_diagnoser.campaign import CampaignError, campaign_lock
    from robomd_diagnoser.config import ConfigError, load_campaign
    from robomd_diagnoser.ros.bringup import SIM_ENV, Graph, sim_campaign_nodes
    from robomd_diagnoser.ros.status_watch import campaign_progress

    try:
        config = load_campaign(args.campaign)
        specs = sim_campaign_nodes(config, args.campaign, args.out)
        console = console_spec(args, args.out or str(config.output), True, "robomd bringup")
        campaign_lock(Path(args.out or config.output)).close()  # start no node into a busy dir
    except (ConfigError, CampaignError, FileNotFoundError) as exc:
        print(f"robomd bringup: {exc}")
        return 2
    env = dict(SIM_ENV)
    if args.domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(args.domain_id)
    graph = Graph(specs + ([console] if console else []), env)
    print(f"robomd bringup: ROS_DOMAIN_ID={graph.env['ROS_DOMAIN_ID']}, localhost only",
          flush=True)
    os.environ.update(graph.env)  # the progress watch joins the graph's domain
    with campaign_progress(config.budget, config.name, not args.no_progress):
        return graph.run("diagnoser", "robomd bringup")
