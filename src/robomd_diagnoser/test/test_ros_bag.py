"""A campaign's bag parts: each run writes a new one, earlier ones are never opened for writing."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

pytest.importorskip("rclpy")

from robomd_diagnoser.ros.bag import (  # noqa: E402
    ROLLOUTS_TOPIC,
    CampaignBag,
    bag_parts,
    bagged_rollouts,
    next_bag_part,
    read_bag,
)
from robomd_msgs.msg import RolloutRecord  # noqa: E402


def _run(out: Path, *keys: str, close: bool = True) -> Path:
    """One run of a campaign that bags ``keys``; a run that does not close is a killed one."""
    path = next_bag_part(out)
    bag = CampaignBag(path)
    for key in keys:
        bag.write(ROLLOUTS_TOPIC, RolloutRecord(key=key))
    if close:
        bag.close()
    return path


def test_each_run_adds_a_part_and_a_killed_part_is_skipped(tmp_path: Path, caplog) -> None:
    assert next_bag_part(tmp_path) == tmp_path / "bag"
    first = _run(tmp_path, "agent/000000_0", "agent/000001_0")
    before = {p.name: p.stat().st_mtime_ns for p in first.iterdir()}
    killed = _run(tmp_path, "agent/000002_0", close=False)
    third = _run(tmp_path, "agent/000002_0", "agent/000003_0")
    assert [p.name for p in bag_parts(tmp_path)] == ["bag", "bag.1", "bag.2"]
    assert (killed.name, third.name) == ("bag.1", "bag.2")
    assert {p.name: p.stat().st_mtime_ns for p in first.iterdir()} == before  # untouched
    with caplog.at_level(logging.WARNING):
        keys = bagged_rollouts(bag_parts(tmp_path))
    assert keys == {"agent/000000_0", "agent/000001_0", "agent/000002_0", "agent/000003_0"}
    assert "bag.1 cannot be read" in caplog.text
    assert [m.key for _t, _s, m in read_bag(third)] == ["agent/000002_0", "agent/000003_0"]
    assert next_bag_part(tmp_path) == tmp_path / "bag.3"


def test_a_campaign_directory_reads_as_its_parts_in_order(tmp_path: Path) -> None:
    _run(tmp_path, "agent/000000_0")
    _run(tmp_path, "agent/000001_0")
    assert [m.key for _t, _s, m in read_bag(tmp_path)] == ["agent/000000_0", "agent/000001_0"]
