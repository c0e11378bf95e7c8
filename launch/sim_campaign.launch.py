"""Simulated RoboMD campaign over ROS 2: the sim bridge and the diagnoser.

    ros2 launch launch/sim_campaign.launch.py campaign:=config/campaigns/lift_bc.yaml

Both nodes take their parameters from the campaign YAML (robomd_diagnoser.ros.bringup maps it to
node parameters; ``robomd bringup`` starts the same graph without ros2 launch). Discovery stays on
localhost in ROS domain 77, so a simulated campaign never reaches a robot's nodes.
"""

from launch.actions import SetEnvironmentVariable

from launch import LaunchDescription
from robomd_diagnoser.ros.bringup import SIM_DOMAIN_ID, SIM_ENV
from robomd_diagnoser.ros.launch_support import campaign_arguments, campaign_nodes


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        *campaign_arguments(),
        *[SetEnvironmentVariable(name, value) for name, value in SIM_ENV.items()],
        SetEnvironmentVariable("ROS_DOMAIN_ID", str(SIM_DOMAIN_ID)),
        campaign_nodes(),
    ])
