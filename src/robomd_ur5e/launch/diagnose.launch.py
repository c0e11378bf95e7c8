"""RoboMD campaign on a real UR5e: camera, policy executor, success detector, operator prompt and
the diagnoser.

    ros2 launch robomd_ur5e diagnose.launch.py robot_ip:=192.168.1.10 policy:=torchscript:/p.pt
    robomd operator --arm        # second terminal: the operator console

With use_fake_hardware:=true the executor drives the simulated UR5e instead (a dry run); with
console:=true the operator console is served in the browser as well (its URL is logged). The node
set and its parameters come from robomd_ur5e.bringup (shared with ``robomd bringup-ur5e``). ROS
domain: the lab's default (ROS_DOMAIN_ID from the shell, else 0); a fake-hardware dry run uses the
simulation's localhost-only domain 77 instead.
"""

from launch.actions import DeclareLaunchArgument, LogInfo, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription
from robomd_diagnoser.config import load_campaign
from robomd_diagnoser.console_spec import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    console_node,
    console_token,
    console_url,
)
from robomd_diagnoser.paths import find_config
from robomd_ur5e.bringup import domain_env, domain_text, preview_twin_node, ur5e_campaign_nodes


def _nodes(context) -> list:
    fake = LaunchConfiguration("use_fake_hardware").perform(context).lower() in ("true", "1")
    campaign = LaunchConfiguration("campaign").perform(context)
    config = load_campaign(campaign)
    output = LaunchConfiguration("output").perform(context) or None
    specs = ur5e_campaign_nodes(
        config, campaign,
        robot_ip=LaunchConfiguration("robot_ip").perform(context),
        camera=LaunchConfiguration("camera").perform(context),
        policy=LaunchConfiguration("policy").perform(context),
        catalog=LaunchConfiguration("catalog").perform(context),
        use_fake_hardware=fake,
        out_dir=output)
    env = domain_env(fake)
    logs = [LogInfo(msg=f"RoboMD UR5e campaign on {domain_text(fake)}")]
    if LaunchConfiguration("console").perform(context).lower() in ("true", "1"):
        host = LaunchConfiguration("console_host").perform(context)
        port = int(LaunchConfiguration("console_port").perform(context))
        token = console_token(host)
        specs += [console_node(output or config.output, host=host, port=port, token=token,
                               read_only=False), preview_twin_node(config.task)]
        logs.append(LogInfo(msg=f"operator console at {console_url(host, port, token)}"))
    return [*logs,
            *[Node(package=s.package, executable=s.executable, name=s.name, namespace=s.namespace,
                   parameters=[s.parameters], additional_env=env, output="screen")
              for s in specs]]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument("robot_ip", description="the UR controller's IP address (required; "
                                                      "ignored with use_fake_hardware:=true)"),
        DeclareLaunchArgument("camera", default_value="0",
                              description="camera source: device index, video file or stream URL"),
        DeclareLaunchArgument("policy", default_value="",
                              description="policy under test (torchscript:, module:, bc:); empty "
                                          "= the campaign's policy"),
        DeclareLaunchArgument("catalog", default_value="",
                              description="catalog for the operator's instructions; empty = the "
                                          "campaign's catalog"),
        DeclareLaunchArgument("campaign",
                              default_value=str(find_config("campaigns/real_lift.yaml")),
                              description="campaign YAML with world type real"),
        DeclareLaunchArgument("use_fake_hardware", default_value="false",
                              description="true: dry run on the simulated UR5e"),
        DeclareLaunchArgument("output", default_value="",
                              description="campaign directory; empty = the campaign's output"),
        DeclareLaunchArgument("console", default_value="false",
                              description="true: serve the operator console in the browser"),
        DeclareLaunchArgument("console_host", default_value=DEFAULT_HOST,
                              description="console bind address (beyond localhost a token is "
                                          "generated and logged with the URL)"),
        DeclareLaunchArgument("console_port", default_value=str(DEFAULT_PORT),
                              description="console TCP port"),
        OpaqueFunction(function=_nodes),
    ])
