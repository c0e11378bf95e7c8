"""Tests of the crash-safe rollout store."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap

import pytest

from robomd_diagnoser.store import RolloutRecord, RolloutStore, StoreError


def rec(key: str, perts: tuple[str, ...] = (), status: str = "completed",
        success: bool | None = True, **kw) -> RolloutRecord:
    return RolloutRecord(key=key, perturbations=perts, seed=kw.pop("seed", 0), status=status,
                         success=success, steps=kw.pop("steps", 10),
                         duration=kw.pop("duration", 1.5), **kw)


def test_roundtrip_keeps_every_field_and_insertion_order(tmp_path):
    records = [
        rec("sweep/cube_red/1", ("cube_red",), success=False, seed=1, agent_step=None,
            reason="cube not lifted", video="videos/cube_red/1.mp4", created=123.5),
        rec("sweep/cube_red/0", ("cube_red",), success=True, seed=0),
        rec("agent/000001", ("table_red", "cube_blue"), status="aborted", success=None,
            agent_step=1, reason="safety stop"),
    ]
    with RolloutStore(tmp_path / "run" / "r.sqlite") as store:
        for r in records:
            store.add(r)
    with RolloutStore(tmp_path / "run" / "r.sqlite") as store:
        got = store.records()
        assert [g.key for g in got] == [r.key for r in records]
        assert got[0] == records[0]
        assert got[1].created > 0 and got[1].success is True
        assert got[2].perturbations == ("table_red", "cube_blue")
        assert got[2].success is None and got[2].agent_step == 1
        assert store.records("sweep/") == got[:2]
        assert store.keys("agent/") == {"agent/000001"}
        assert store.count() == 3 and store.count("sweep/cube") == 2
        assert store.directory == tmp_path / "run"


def test_duplicate_key_is_refused_with_its_name(tmp_path):
    with RolloutStore(tmp_path / "r.sqlite") as store:
        store.add(rec("sweep/nominal/0"))
        with pytest.raises(ValueError, match="sweep/nominal/0"):
            store.add(rec("sweep/nominal/0", success=False))
        assert store.records()[0].success is True


@pytest.mark.parametrize(("status", "success", "match"), [
    ("completed", None, "completed rollout needs success"),
    ("aborted", False, "success must be None"),
    ("exploded", None, "status 'exploded'"),
])
def test_inconsistent_records_are_refused(tmp_path, status, success, match):
    with RolloutStore(tmp_path / "r.sqlite") as store:
        with pytest.raises(ValueError, match=match):
            store.add(rec("k", status=status, success=success))
        assert store.count() == 0


def test_prefix_is_literal_not_a_pattern(tmp_path):
    with RolloutStore(tmp_path / "r.sqlite") as store:
        store.add(rec("a_b/1"))
        store.add(rec("axb/1"))
        store.add(rec("a%/1"))
        assert store.keys("a_") == {"a_b/1"}
        assert store.keys("a%") == {"a%/1"}


def test_resume_sees_what_an_earlier_process_committed(tmp_path):
    path = tmp_path / "r.sqlite"
    script = textwrap.dedent(f"""
        import os
        from robomd_diagnoser.store import RolloutRecord, RolloutStore
        s = RolloutStore({str(path)!r})
        for i in range(3):
            s.add(RolloutRecord(f"sweep/x/{{i}}", ("x",), i, "completed", False, 5, 0.1))
        s.set_meta("settings", {{"seed": 7}})
        os._exit(1)  # die without closing: every add was already committed
    """)
    subprocess.run([sys.executable, "-c", script], check=False)
    with RolloutStore(path) as store:
        assert store.keys() == {f"sweep/x/{i}" for i in range(3)}
        assert store.has("sweep/x/2") and not store.has("sweep/x/3")
        assert store.get_meta("settings") == {"seed": 7}
        store.add(rec("sweep/x/3"))
        assert store.count() == 4


def test_meta_roundtrips_json_and_defaults(tmp_path):
    with RolloutStore(tmp_path / "r.sqlite") as store:
        assert store.get_meta("missing", default=[1]) == [1]
        store.set_meta("opts", {"a": [1, 2.5, None], "b": "x"})
        store.set_meta("opts", {"a": 2})
        assert store.get_meta("opts") == {"a": 2}
        with pytest.raises(TypeError):
            store.set_meta("bad", object())


def test_file_is_in_wal_mode(tmp_path):
    with RolloutStore(tmp_path / "r.sqlite") as store:
        store.add(rec("k"))
        conn = sqlite3.connect(tmp_path / "r.sqlite")
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.close()


def test_reader_in_another_connection_sees_commits_while_writer_is_open(tmp_path):
    path = tmp_path / "r.sqlite"
    with RolloutStore(path) as writer, RolloutStore(path) as reader:
        writer.add(rec("a"))
        assert reader.keys() == {"a"}
        # A read transaction held open by a third connection does not block the writer (WAL).
        conn = sqlite3.connect(path)
        conn.execute("BEGIN")
        assert conn.execute("SELECT COUNT(*) FROM rollouts").fetchone()[0] == 1
        writer.add(rec("b"))
        assert conn.execute("SELECT COUNT(*) FROM rollouts").fetchone()[0] == 1  # its snapshot
        conn.rollback()
        conn.close()
        assert reader.keys() == {"a", "b"}


def test_non_sqlite_file_gives_a_clear_error(tmp_path):
    path = tmp_path / "rollouts.sqlite"
    path.write_bytes(b"this is not a database\n" * 100)
    with pytest.raises(StoreError, match="rollouts.sqlite is not a usable rollout store"):
        RolloutStore(path)


def test_other_sqlite_schema_version_is_refused(tmp_path):
    path = tmp_path / "r.sqlite"
    RolloutStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = '99' WHERE name = '_schema'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="schema 99"):
        RolloutStore(path)
