"""ROS 2 adapters of the core (these modules import rclpy; the rest of the package does not)."""
