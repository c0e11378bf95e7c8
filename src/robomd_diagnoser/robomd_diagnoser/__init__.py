"""RoboMD core: perturbation catalogs, worlds, policies, campaigns and analysis (no rclpy)."""

__version__ = "0.1.0"
