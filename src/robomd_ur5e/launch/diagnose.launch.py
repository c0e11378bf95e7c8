"""RoboMD campaign on a real UR5e: camera, policy executor, success detector, operator prompt and
the diagnoser.

    ros2 launch robomd_ur5e diagnose.launch.py robot_ip:=192.168.1.10 policy:=torchscript:/p.pt
    robomd operator --arm        # second terminal: the operator console

With use_mock_hardware:=true the executor drives the simulated UR5e instead (a dry run);
use_fake_hardware:=true, the switch's name in older Universal Robots driver releases, does the
same. With console:=true the operator console is served in the browser as well (its URL is
logged). The node
set and its parameters come from robomd_ur5e.bringup (shared with ``robomd bringup-ur5e``). ROS
domain: the lab's default (ROS_DOMAIN_ID from the shell, else 0); a mock-hardware dry run uses
domain 77 on localhost only instead (loopback-only DDS sockets with Fast DDS).
"""

import os

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
from robomd_diagnoser.ros.bringup import SIM_DOMAIN_ID
from robomd_diagnoser.ros.network import loopback_env
from robomd_ur5e.bringup import domain_env, domain_text, preview_twin_node, ur5e_campaign_nodes


def _flag(context, name: str) -> bool:
    return LaunchConfiguration(name).perform(context).strip().lower() in ("true", "1")


def _nodes(context) -> list:
    fake = _flag(context, "use_mock_hardware") or _flag(context, "use_fake_hardware")
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
    env = domain_env(fake, SIM_DOMAIN_ID)
    if fake:
        env.update(loopback_env({**os.environ, **env}))
    secure = _flag(context, "security_enclaves")
    logs = [LogInfo(msg=f"RoboMD UR5e campaign on {domain_text(fake, {**os.environ, **env})}")]
    if _flag(context, "console"):
        host = LaunchConfiguration("console_host").perform(context)
        port = int(LaunchConfiguration("console_port").perform(context))
        token = console_token(host)
        specs += [console_node(output or config.output, host=host, port=port, token=token,
                               read_only=False), preview_twin_node(config.task)]
        logs.append(LogInfo(msg=f"operator console at {console_url(host, port, token)}"))
    return [*logs,
            *[Node(package=s.package, executable=s.executable, name=s.name, namespace=s.namespace,
                   parameters=[s.parameters], additional_env=env, output="screen",
                   ros_arguments=["--enclave", f"{s.namespace}/{s.name}"] if secure else [])
              for s in specs]]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument("robot_ip", description="the UR controller's IP address (required; "
                                                      "ignored with use_mock_hardware:=true)"),
        DeclareLaunchArgument("camera", default_value="0",
                              description="camera source: device index, video file or stream URL"),
        DeclareLaunchArgument("policy", default_value="",
                              description="policy under test (torchscript:, module:, bc:); empty "
                                          "= the campaign's policy. module: runs that Python "
                                          "code: a spec is trusted input"),
        DeclareLaunchArgument("catalog", default_value="",
                              description="catalog for the operator's instructions; empty = the "
                                          "campaign's catalog"),
        DeclareLaunchArgument("campaign",
                              default_value=str(find_config("campaigns/real_lift.yaml")),
                              description="campaign YAML with world type real"),
        DeclareLaunchArgument("use_mock_hardware", default_value="false",
                              description="true: dry run on the simulated UR5e (the current UR "
                                          "driver's name for this switch)"),
        DeclareLaunchArgument("use_fake_hardware", default_value="false",
                              description="older name of use_mock_hardware (UR driver releases "
                                          "before the rename); either one set to true selects "
                                          "the simulated UR5e"),
        DeclareLaunchArgument("security_enclaves", default_value="false",
                              description="true: each node runs in the SROS2 enclave "
                                          "/robomd/<node name> (set ROS_SECURITY_KEYSTORE, "
                                          "ROS_SECURITY_ENABLE=true, ROS_SECURITY_STRATEGY="
                                          "Enforce; docs/real_robot.md, Access)"),
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
