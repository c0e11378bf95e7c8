"""sim_bridge_node parameter validation: bad values are rejected with the parameter named."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("rclpy")

from robomd_sim_bridge.sim_bridge_node import (  # noqa: E402
    PARAMETERS,
    ParameterError,
    world_settings,
)


def _params(**overrides) -> dict:
    return {**{k: p.default for k, p in PARAMETERS.items()}, **overrides}


def test_defaults_make_the_lift_bc_world() -> None:
    spec = world_settings(_params())
    assert Path(spec.catalog).name == "lift.yaml"
    assert (spec.policy, spec.robot, spec.camera_size, spec.horizon) == ("bc", "UR5e", 84, 150)


@pytest.mark.parametrize("name, value, message", [
    ("camera_size", 8, "camera_size=8"),
    ("horizon", 0, "horizon=0"),
    ("robot", "Baxter", "robot='Baxter'"),
    ("task", "juggle", "task='juggle'"),
    ("catalog", "/no/such/catalog.yaml", "catalog='/no/such/catalog.yaml'"),
])
def test_bad_values_name_the_parameter(name: str, value, message: str) -> None:
    with pytest.raises(ParameterError, match=message.replace("(", r"\(")):
        world_settings(_params(**{name: value}))
