"""Shared pieces of the simulated-campaign launch files (needs the ``launch`` packages)."""

from __future__ import annotations

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from robomd_diagnoser.config import load_campaign
from robomd_diagnoser.paths import find_config
from robomd_diagnoser.ros.bringup import sim_campaign_nodes


def campaign_arguments() -> list[DeclareLaunchArgument]:
    """The ``campaign`` and ``output`` launch arguments."""
    return [
        DeclareLaunchArgument("campaign", default_value=str(find_config("campaigns/lift_bc.yaml")),
                              description="campaign YAML (config/campaigns/)"),
        DeclareLaunchArgument("output", default_value="",
                              description="campaign directory; empty = the campaign's output"),
    ]


def campaign_nodes(package: str | None = None) -> OpaqueFunction:
    """The campaign's nodes (those of ``package`` only, if given), parameterised from its YAML."""

    def nodes(context) -> list[Node]:
        campaign = LaunchConfiguration("campaign").perform(context)
        output = LaunchConfiguration("output").perform(context) or None
        specs = sim_campaign_nodes(load_campaign(campaign), campaign, output)
        return [Node(package=s.package, executable=s.executable, name=s.name,
                     namespace=s.namespace, parameters=[s.parameters], output="screen")
                for s in specs if package is None or s.package == package]

    return OpaqueFunction(function=nodes)
