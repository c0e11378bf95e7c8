"""Static check of every launch file, without a ROS 2 ``launch`` install.

Each launch file is executed against small stand-ins for ``launch`` / ``launch_ros`` that record
what it declares; every Node must name a package of this workspace and one of its console
scripts, every parameter must be one the node declares, and every parameter file must exist and
parse.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
import types
from pathlib import Path

import pytest
import yaml

WS = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted([*WS.glob("launch/*.launch.py"), *WS.glob("src/*/launch/*.launch.py")])
#: Values given to required launch arguments (no default) when a launch file is run here.
REQUIRED_SAMPLES = {"robot_ip": "192.0.2.10"}
UR5E_LAUNCH = WS / "src" / "robomd_ur5e" / "launch" / "diagnose.launch.py"


class _Recorder:
    def __init__(self, *args, **kwargs) -> None:
        self.args, self.kwargs = args, kwargs


class _LaunchConfiguration(_Recorder):
    def perform(self, context: dict) -> str:
        return context[self.args[0]]


def _stub_modules() -> dict[str, types.ModuleType]:
    mods = {name: types.ModuleType(name) for name in
            ("launch", "launch.actions", "launch.substitutions", "launch_ros",
             "launch_ros.actions")}
    mods["launch"].LaunchDescription = _Recorder
    for name in ("DeclareLaunchArgument", "OpaqueFunction", "SetEnvironmentVariable",
                 "IncludeLaunchDescription", "GroupAction", "LogInfo"):
        setattr(mods["launch.actions"], name, type(name, (_Recorder,), {}))
    mods["launch.substitutions"].LaunchConfiguration = _LaunchConfiguration
    mods["launch_ros.actions"].Node = type("Node", (_Recorder,), {})
    return mods


def _console_scripts(package: str) -> set[str]:
    tree = ast.parse((WS / "src" / package / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "console_scripts":
                    return {ast.literal_eval(e).split("=")[0].strip() for e in value.elts}
    return set()


def _declared_parameters(package: str, executable: str) -> set[str] | None:
    """Parameter names a node declares, where the node module publishes them as PARAMETERS."""
    scripts = {}
    tree = ast.parse((WS / "src" / package / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "=" in node.value \
                and ":" in node.value:
            name, target = (s.strip() for s in node.value.split("=", 1))
            scripts[name] = target.split(":")[0]
    module = importlib.import_module(scripts[executable])
    params = getattr(module, "PARAMETERS", None)
    return set(params) if params is not None else None


def _run(path: Path, monkeypatch: pytest.MonkeyPatch,
         overrides: dict[str, str] | None = None) -> tuple[list, list]:
    for name, mod in _stub_modules().items():
        monkeypatch.setitem(sys.modules, name, mod)
    spec = importlib.util.spec_from_file_location(f"launch_under_test_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    entities = list(description.args[0])
    arguments = [e for e in entities if type(e).__name__ == "DeclareLaunchArgument"]
    context = {a.args[0]: a.kwargs.get("default_value", REQUIRED_SAMPLES.get(a.args[0], ""))
               for a in arguments}
    context.update(overrides or {})
    nodes = []
    for entity in entities:
        if type(entity).__name__ == "OpaqueFunction":
            nodes += [e for e in entity.kwargs["function"](context)
                      if type(e).__name__ == "Node"]
        elif type(entity).__name__ == "Node":
            nodes.append(entity)
    return arguments, nodes


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: str(p.relative_to(WS)))
def test_launch_file_nodes_and_parameters_exist(path: Path, monkeypatch) -> None:
    arguments, nodes = _run(path, monkeypatch)
    assert nodes, f"{path.name} starts no node"
    for arg in arguments:
        assert arg.kwargs.get("description"), f"launch argument {arg.args[0]} has no description"
    for node in nodes:
        package, executable = node.kwargs["package"], node.kwargs["executable"]
        assert (WS / "src" / package / "package.xml").is_file(), f"unknown package {package}"
        assert executable in _console_scripts(package), \
            f"{package} has no console script {executable!r}"
        declared = _declared_parameters(package, executable)
        for params in node.kwargs.get("parameters", []):
            if isinstance(params, dict):
                if declared is not None:
                    assert set(params) <= declared, \
                        f"{executable}: undeclared parameters {set(params) - declared}"
            else:
                file = Path(str(params))
                assert file.is_file(), f"{path.name}: parameter file {file} does not exist"
                yaml.safe_load(file.read_text())


def test_there_are_launch_files() -> None:
    names = {p.name for p in LAUNCH_FILES}
    assert {"sim_campaign.launch.py", "sim_bridge.launch.py", "diagnoser.launch.py",
            "diagnose.launch.py"} <= names


def test_ur5e_launch_requires_robot_ip_and_starts_the_real_graph(monkeypatch) -> None:
    arguments, nodes = _run(UR5E_LAUNCH, monkeypatch)
    declared = {a.args[0]: a.kwargs for a in arguments}
    assert {"robot_ip", "camera", "policy", "catalog", "campaign", "use_mock_hardware",
            "use_fake_hardware"} <= set(declared)
    assert "default_value" not in declared["robot_ip"], "robot_ip must have no default"
    assert declared["use_mock_hardware"]["default_value"] == "false"
    assert declared["use_fake_hardware"]["default_value"] == "false"
    assert {n.kwargs["name"] for n in nodes} == {
        "camera", "policy_executor", "success_detector", "operator_prompt", "diagnoser"}
    executor = next(n for n in nodes if n.kwargs["name"] == "policy_executor")
    assert executor.kwargs["parameters"][0]["robot_ip"] == REQUIRED_SAMPLES["robot_ip"]
    assert executor.kwargs["additional_env"] == {}, "a real robot uses the lab's ROS domain"


@pytest.mark.parametrize("switch", ["use_mock_hardware", "use_fake_hardware"])
def test_ur5e_launch_takes_the_mock_hardware_switch_under_both_names(monkeypatch,
                                                                    switch: str) -> None:
    arguments, _ = _run(UR5E_LAUNCH, monkeypatch)
    names = [a.args[0] for a in arguments]
    assert names.index("use_mock_hardware") < names.index("use_fake_hardware"), \
        "the current UR driver's name comes first; the older one is the alias"
    _, nodes = _run(UR5E_LAUNCH, monkeypatch, {switch: "true"})
    assert "camera" not in {n.kwargs["name"] for n in nodes}, "the simulated UR5e renders"
    executor = next(n for n in nodes if n.kwargs["name"] == "policy_executor")
    assert executor.kwargs["parameters"][0]["use_fake_hardware"] is True


def test_ur5e_launch_puts_each_node_in_its_own_enclave_on_request(monkeypatch) -> None:
    _, plain = _run(UR5E_LAUNCH, monkeypatch)
    assert all(n.kwargs["ros_arguments"] == [] for n in plain)
    _, secure = _run(UR5E_LAUNCH, monkeypatch, {"security_enclaves": "true"})
    assert {tuple(n.kwargs["ros_arguments"]) for n in secure} == {
        ("--enclave", f"/robomd/{name}") for name in
        ("camera", "policy_executor", "success_detector", "operator_prompt", "diagnoser")}
