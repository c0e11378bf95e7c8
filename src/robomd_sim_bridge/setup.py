from glob import glob

from setuptools import find_packages, setup

package_name = "robomd_sim_bridge"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    package_data={package_name: ["data/*", "data/lift_act_state/*"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{package_name}"]),
        (f"share/{package_name}", ["package.xml"]),
        (f"share/{package_name}/launch", glob("launch/*.launch.py")),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="RoboMD maintainers",
    maintainer_email="maintainers@robomd.dev",
    description="Simulated RoboMD world on robosuite/MuJoCo and its ROS 2 bridge node.",
    license="Apache-2.0",
    extras_require={"test": ["pytest"]},
    entry_points={
        "console_scripts": ["sim_bridge_node = robomd_sim_bridge.sim_bridge_node:main"],
        # Plug-ins of robomd_diagnoser (robomd_diagnoser.plugins).
        "robomd.worlds": ["sim = robomd_sim_bridge.plugins:build_world"],
        "robomd.policies": ["expert = robomd_sim_bridge.plugins:expert"],
        "robomd.weights": [
            "bc.lift = robomd_sim_bridge.plugins:lift_bc_weights",
            "bc_state.lift = robomd_sim_bridge.plugins:lift_state_bc_weights",
            "lerobot.lift = robomd_sim_bridge.plugins:lift_lerobot_weights",
        ],
        "robomd.demonstrators": ["sim = robomd_sim_bridge.plugins:collect_expert_demos"],
        "robomd.commands": [
            "collect-demos = robomd_sim_bridge.cli.collect_demos",
            "collect-state-demos = robomd_sim_bridge.cli.collect_state_demos",
        ],
        "robomd.bench": ["sim = robomd_sim_bridge.cli.bench_sim"],
    },
)
