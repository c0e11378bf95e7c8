"""The operator's browser console: state (no ROS), web app and static assets."""
