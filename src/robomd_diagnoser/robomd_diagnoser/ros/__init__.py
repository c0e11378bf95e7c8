"""The ROS 2 side of the core (these modules import rclpy; the rest of the package does not).

- :mod:`.node`: what every node shares (parameter table, ``main()``, the rollout action server).
- :mod:`.world`: :class:`~.world.RosWorld`, a world behind the ROS 2 contract.
- :mod:`.diagnoser_node`: the campaign as a node; :mod:`.bringup` starts a node graph without
  ``ros2 launch``; :mod:`.launch_support` builds the same graph for launch files.
- :mod:`.convert`, :mod:`.image`: messages <-> core types; :mod:`.bag`: the campaign's MCAP bag;
  :mod:`.interface_check`: the interfaces round trip between processes.
"""
