"""Tests of config lookup."""

from __future__ import annotations

import pytest

from robomd_diagnoser.paths import ENV_VAR, find_config


def test_env_dir_comes_first(tmp_path, monkeypatch):
    (tmp_path / "catalogs").mkdir()
    (tmp_path / "catalogs" / "lift.yaml").write_text("task: lift\n")
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert find_config("catalogs/lift.yaml") == tmp_path / "catalogs" / "lift.yaml"


def test_source_workspace_config_is_found(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    path = find_config("catalogs/lift.yaml")
    assert path.is_file() and path.parent.name == "catalogs"


def test_missing_file_names_where_it_looked_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    with pytest.raises(FileNotFoundError, match=rf"catalogs/nope.yaml not found in .*{ENV_VAR}"):
        find_config("catalogs/nope.yaml")
