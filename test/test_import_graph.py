"""The packages' layering, read from their source: dependencies run one way, no import cycles,
and each package.xml declares what its code imports.

robomd_msgs <- robomd_diagnoser <- {robomd_sim_bridge, robomd_ur5e}; robomd_ur5e may use the
simulator for its fake hardware. Imports inside functions count (a lazy import is still a
dependency); imports under ``if TYPE_CHECKING:`` do not (they never run).
"""

from __future__ import annotations

import ast
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
OURS = ("robomd_msgs", "robomd_diagnoser", "robomd_sim_bridge", "robomd_ur5e")
#: What each Python package of the suite may import of its siblings.
ALLOWED = {
    "robomd_diagnoser": {"robomd_msgs"},
    "robomd_sim_bridge": {"robomd_msgs", "robomd_diagnoser"},
    "robomd_ur5e": {"robomd_msgs", "robomd_diagnoser", "robomd_sim_bridge"},
}
#: ROS packages (as package.xml names them) whose Python modules our code imports.
ROS_MODULES = {"rclpy", "rcl_interfaces", "sensor_msgs", "std_msgs", "std_srvs", "action_msgs",
               "builtin_interfaces", "launch", "launch_ros", "ament_index_python"}


def _modules(package: str) -> dict[str, Path]:
    root = SRC / package / package
    out = {}
    for path in root.rglob("*.py"):
        rel = path.relative_to(root.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(path: Path, module: str) -> set[str]:
    """Absolute names of everything ``path`` imports at run time."""
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    is_package = path.name == "__init__.py"

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit(sub)
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = module.split(".")
                    base = base[:len(base) - child.level + (1 if is_package else 0)]
                    name = ".".join(base + ([child.module] if child.module else []))
                else:
                    name = child.module or ""
                found.add(name)
                found.update(f"{name}.{alias.name}" for alias in child.names)
            visit(child)

    visit(tree)
    return found


def _graph() -> dict[str, set[str]]:
    modules: dict[str, Path] = {}
    for package in ALLOWED:
        modules.update(_modules(package))
    graph = {}
    for name, path in modules.items():
        deps = set()
        for imported in _imports(path, name):
            # the longest of our modules that the imported name is or is inside of
            parts = imported.split(".")
            for k in range(len(parts), 0, -1):
                candidate = ".".join(parts[:k])
                if candidate in modules:
                    if candidate != name:
                        deps.add(candidate)
                    break
        graph[name] = deps
    return graph


def _package_imports(package: str) -> set[str]:
    tops = set()
    for name, path in _modules(package).items():
        tops.update(i.split(".")[0] for i in _imports(path, name))
    return tops


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_packages_import_only_the_layers_below(package: str) -> None:
    siblings = _package_imports(package) & set(OURS) - {package}
    assert siblings <= ALLOWED[package], (
        f"{package} imports {sorted(siblings - ALLOWED[package])}; dependencies run "
        "robomd_msgs <- robomd_diagnoser <- {robomd_sim_bridge, robomd_ur5e}: register through "
        "the entry points of robomd_diagnoser.plugins instead")


def test_no_import_cycle_between_modules() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return stack[stack.index(dep):] + [dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            assert cycle is None, "import cycle: " + " -> ".join(cycle)


def _declared(package: str) -> set[str]:
    root = ET.parse(SRC / package / "package.xml").getroot()
    return {e.text.strip() for e in root if e.tag in ("depend", "exec_depend")}


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_xml_declares_what_the_code_imports(package: str) -> None:
    imported = _package_imports(package)
    needed = (imported & (set(OURS) | ROS_MODULES)) - {package}
    declared = _declared(package)
    assert needed <= declared, f"{package}/package.xml lacks {sorted(needed - declared)}"
    ours = declared & set(OURS)
    assert ours <= needed | {"robomd_msgs"}, (
        f"{package}/package.xml declares {sorted(ours - needed)} that its code never imports")


def test_the_graph_sees_lazy_imports(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import hidden\n"
                      "def f():\n    from robomd_diagnoser import policy\n")
    assert _imports(source, "pkg.mod") == {"typing", "typing.TYPE_CHECKING",
                                           "robomd_diagnoser", "robomd_diagnoser.policy"}
