from glob import glob

from setuptools import find_packages, setup

package_name = "robomd_diagnoser"


def config_files(sub: str) -> tuple[str, list[str]]:
    """Install the workspace's config/<sub>/*.yaml|json into share/<pkg>/config/<sub>."""
    files = glob(f"../../config/{sub}/*.yaml") + glob(f"../../config/{sub}/*.json")
    return (f"share/{package_name}/config/{sub}", sorted(files))


setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{package_name}"]),
        (f"share/{package_name}", ["package.xml"]),
        (f"share/{package_name}/launch", glob("launch/*.launch.py")),
        config_files("catalogs"),
        config_files("campaigns"),
        config_files("ur5e"),
        config_files("ground_truth"),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="RoboMD maintainers",
    maintainer_email="maintainers@robomd.dev",
    description="RoboMD core, diagnoser node and robomd command line.",
    license="Apache-2.0",
    extras_require={"test": ["pytest"]},
    entry_points={
        "console_scripts": [
            "robomd = robomd_diagnoser.cli.main:main",
            "interface_echo = robomd_diagnoser.ros.interface_check:echo_main",
            "diagnoser_node = robomd_diagnoser.ros.diagnoser_node:main",
        ],
        # Plug-ins (robomd_diagnoser.plugins); sibling packages add theirs in their setup.py.
        "robomd.worlds": ["table = robomd_diagnoser.table_world:build_table_world"],
        "robomd.policies": [
            "bc = robomd_diagnoser.learning.bc_policy:bc_kind",
            "torchscript = robomd_diagnoser.policy:torchscript_kind",
            "module = robomd_diagnoser.policy:module_kind",
            "bc_state = robomd_diagnoser.learning.state_bc:load_state_policy",
            "remote = robomd_diagnoser.remote_policy:make_remote_policy",
            "robomimic = robomd_diagnoser.robomimic_policy:make_robomimic_policy",
            "lerobot = robomd_diagnoser.lerobot_policy:make_lerobot_policy",
        ],
        # robomd subcommands, in `robomd --help` order.
        "robomd.commands": [
            "diagnose = robomd_diagnoser.cli.diagnose",
            "report = robomd_diagnoser.cli.report",
            "compare = robomd_diagnoser.cli.compare",
            "bringup = robomd_diagnoser.cli.bringup",
            "sweep = robomd_diagnoser.cli.sweep",
            "train-bc = robomd_diagnoser.cli.train_bc",
            "train-state-bc = robomd_diagnoser.cli.train_state_bc",
            "serve-policy = robomd_diagnoser.cli.serve_policy",
            "eval-policy = robomd_diagnoser.cli.eval_policy",
            "finetune = robomd_diagnoser.cli.finetune",
            "embed = robomd_diagnoser.cli.embed",
            "query = robomd_diagnoser.cli.query",
            "space = robomd_diagnoser.cli.space",
            "bench = robomd_diagnoser.cli.bench",
            "check-interfaces = robomd_diagnoser.cli.check_interfaces",
        ],
        "robomd.bench": [
            "diagnose = robomd_diagnoser.cli.bench.diagnose",
            "ros = robomd_diagnoser.cli.bench.ros",
            "continuous = robomd_diagnoser.cli.bench.continuous",
            "finetune = robomd_diagnoser.cli.bench.finetune",
            "scale = robomd_diagnoser.cli.bench.scale",
        ],
    },
)
