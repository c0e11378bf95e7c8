"""The campaign directory's lock: one holder at a time, taken before anything there is touched."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from robomd_diagnoser.campaign import CampaignError, campaign_lock, run_campaign
from robomd_diagnoser.config import load_campaign
from robomd_diagnoser.paths import find_config

_HOLD = """
import sys, time
from robomd_diagnoser.campaign import campaign_lock
lock = campaign_lock(sys.argv[1])
print("held", flush=True)
time.sleep(60)
"""


def test_a_second_holder_is_refused_until_the_first_releases(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(tmp_path / "camp")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(CampaignError, match="another campaign is running in .*camp"):
            campaign_lock(tmp_path / "camp")
    finally:
        holder.kill()
        holder.wait()
    with campaign_lock(tmp_path / "camp") as lock:  # the holder died: the lock is free again
        assert lock.held
    assert not lock.held


def test_run_campaign_refuses_a_lock_on_another_directory(tmp_path: Path) -> None:
    config = load_campaign(find_config("campaigns/lift_test.yaml"))
    with campaign_lock(tmp_path / "a") as lock, pytest.raises(ValueError, match="not held on"):
        run_campaign(config, tmp_path / "b", progress=False, lock=lock)
    assert not (tmp_path / "b").exists()
