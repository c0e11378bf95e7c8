"""Start only the simulated world node (sim_bridge) of a simulated campaign.

    ros2 launch robomd_sim_bridge sim_bridge.launch.py campaign:=<campaign.yaml>
"""

from launch import LaunchDescription
from robomd_diagnoser.ros.launch_support import campaign_arguments, campaign_nodes


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([*campaign_arguments(), campaign_nodes("robomd_sim_bridge")])
