"""Workspace-wide pytest set-up: keep test DDS traffic on this machine and off other graphs."""

import os

# Localhost-only discovery (Jazzy) and a domain of our own, so tests never talk to a lab's robot.
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
os.environ.setdefault("MUJOCO_GL", "egl")
