from glob import glob

from setuptools import find_packages, setup

package_name = "robomd_ur5e"

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    package_data={"robomd_ur5e.console": ["static/*"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{package_name}"]),
        (f"share/{package_name}", ["package.xml"]),
        (f"share/{package_name}/launch", glob("launch/*.launch.py")),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="RoboMD maintainers",
    maintainer_email="maintainers@robomd.dev",
    description="Real UR5e RoboMD campaign nodes.",
    license="Apache-2.0",
    extras_require={"test": ["pytest"]},
    entry_points={
        "console_scripts": [
            "camera_node = robomd_ur5e.camera_node:main",
            "policy_executor_node = robomd_ur5e.policy_executor_node:main",
            "success_detector_node = robomd_ur5e.success_detector_node:main",
            "operator_prompt_node = robomd_ur5e.operator_prompt_node:main",
            "console_node = robomd_ur5e.console_node:main",
            "preview_twin_node = robomd_ur5e.preview_twin_node:main",
        ],
        # Plug-ins of robomd_diagnoser (robomd_diagnoser.plugins).
        "robomd.worlds": ["real = robomd_ur5e.bringup:in_process_world"],
        "robomd.commands": [
            "bringup-ur5e = robomd_ur5e.cli.bringup_ur5e",
            "operator = robomd_ur5e.cli.operator",
        ],
    },
)
