"""Start only the diagnoser node of a simulated campaign.

    ros2 launch robomd_diagnoser diagnoser.launch.py campaign:=<campaign.yaml>
"""

from launch import LaunchDescription
from robomd_diagnoser.ros.launch_support import campaign_arguments, campaign_nodes


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([*campaign_arguments(), campaign_nodes("robomd_diagnoser")])
