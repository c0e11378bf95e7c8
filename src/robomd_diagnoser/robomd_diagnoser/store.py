"""Crash-safe persistence of finished rollouts: one SQLite file per run.

Every finished rollout becomes one row, committed immediately (SQLite in WAL mode), under a key
that is unique within the store. A run that is interrupted and started again asks :meth:`has` /
:meth:`keys` and skips what is already there. Run-level settings (the options a run was started
with, an agent checkpoint path...) live in a small JSON key/value table (:meth:`set_meta`).

Other processes may read the file while a run writes to it (WAL readers never block the writer).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self
from urllib.parse import quote

from robomd_diagnoser.world import RolloutStatus

_SCHEMA_VERSION = 1
_STATUSES = tuple(s.value for s in RolloutStatus)
_COLUMNS = ("key", "perturbations", "seed", "status", "success", "steps", "duration",
            "agent_step", "reason", "video", "created")


class StoreError(RuntimeError):
    """The store file cannot be used (not SQLite, corrupt, or of an incompatible version)."""


@dataclass(frozen=True)
class RolloutRecord:
    """One finished rollout as stored.

    :param key: unique within the store, e.g. ``sweep/cube_red/7`` or ``agent/000123``.
    :param perturbations: the cumulative perturbation names applied for this rollout.
    :param seed: the seed the scene was reset and the rollout executed with.
    :param status: a :class:`~robomd_diagnoser.world.RolloutStatus` value.
    :param success: the judged outcome; ``None`` unless ``status`` is ``completed``.
    :param steps: control steps executed.
    :param duration: wall-clock seconds of the rollout.
    :param agent_step: the diagnosing agent's step that asked for this rollout, if any.
    :param reason: why the rollout ended or was judged so (free text).
    :param video: path of the rollout's video relative to the store's directory, if kept.
    :param created: unix time; :meth:`RolloutStore.add` fills it in when 0.
    """

    key: str
    perturbations: tuple[str, ...]
    seed: int
    status: str
    success: bool | None
    steps: int
    duration: float
    agent_step: int | None = None
    reason: str = ""
    video: str | None = None
    created: float = 0.0

    @property
    def failed(self) -> bool:
        """True for a completed rollout judged unsuccessful (aborted ones never fail)."""
        return self.status == RolloutStatus.COMPLETED.value and self.success is False


def _validate(record: RolloutRecord) -> None:
    if not isinstance(record.key, str) or not record.key:
        raise ValueError(f"RolloutRecord.key must be a non-empty string, got {record.key!r}")
    if record.status not in _STATUSES:
        raise ValueError(f"RolloutRecord {record.key!r}: status {record.status!r} is not one of "
                         f"{_STATUSES}")
    completed = record.status == RolloutStatus.COMPLETED.value
    if completed and not isinstance(record.success, bool):
        raise ValueError(f"RolloutRecord {record.key!r}: a completed rollout needs success=True "
                         f"or False, got {record.success!r}")
    if not completed and record.success is not None:
        raise ValueError(f"RolloutRecord {record.key!r}: success must be None for status "
                         f"{record.status!r} (only completed rollouts are judged)")
    if not all(isinstance(p, str) for p in record.perturbations):
        raise ValueError(f"RolloutRecord {record.key!r}: perturbations must be names (strings), "
                         f"got {record.perturbations!r}")


def _row_to_record(row: tuple) -> RolloutRecord:
    key, perts, seed, status, success, steps, duration, agent_step, reason, video, created = row
    return RolloutRecord(key=key, perturbations=tuple(json.loads(perts)), seed=seed, status=status,
                         success=None if success is None else bool(success), steps=steps,
                         duration=duration, agent_step=agent_step, reason=reason, video=video,
                         created=created)


class RolloutStore:
    """Finished rollouts and run metadata in one SQLite file (WAL mode, commit per rollout).

    :param path: the database file; created (with its parent directory) if missing.
    :param create: False to open an existing store only (to read it): a missing file is an
        error instead of a new empty store, and the file must pass SQLite's integrity check.
    :raises StoreError: if the file exists but is not a RoboMD rollout store (or, with
        ``create=False``, is missing or damaged).
    """

    def __init__(self, path: str | Path, create: bool = True) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        if not create and not self.path.is_file():
            raise StoreError(f"rollout store {self.path} does not exist (deleted or moved?); "
                             "restore it, or rerun the campaign to rebuild it")
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        target = self.path if create else f"file:{quote(str(self.path.resolve()))}?mode=rw"
        self._conn = sqlite3.connect(target, timeout=30.0, check_same_thread=False,
                                     isolation_level=None, uri=not create)
        try:
            if create:
                self._init_schema()
            else:
                self._check_existing()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise StoreError(f"{self.path} is not a usable rollout store ({exc}); move it aside "
                             "or choose another output directory") from None

    @property
    def directory(self) -> Path:
        """The directory that record ``video`` paths are relative to."""
        return self.path.parent

    def _init_schema(self) -> None:
        c = self._conn
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("PRAGMA synchronous=FULL")
        c.execute("BEGIN IMMEDIATE")
        try:
            c.execute("CREATE TABLE IF NOT EXISTS meta"
                      " (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
            c.execute(
                "CREATE TABLE IF NOT EXISTS rollouts ("
                " id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE,"
                " perturbations TEXT NOT NULL, seed INTEGER NOT NULL, status TEXT NOT NULL,"
                " success INTEGER, steps INTEGER NOT NULL, duration REAL NOT NULL,"
                " agent_step INTEGER, reason TEXT NOT NULL, video TEXT, created REAL NOT NULL)")
            row = c.execute("SELECT value FROM meta WHERE name = '_schema'").fetchone()
            if row is None:
                c.execute("INSERT INTO meta VALUES ('_schema', ?)", (json.dumps(_SCHEMA_VERSION),))
            elif json.loads(row[0]) != _SCHEMA_VERSION:
                raise StoreError(f"{self.path} has store schema {row[0]}, this version reads "
                                 f"schema {_SCHEMA_VERSION}; use a new output directory")
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def _check_existing(self) -> None:
        c = self._conn
        problems = [r[0] for r in c.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            raise StoreError(f"{self.path} is damaged (SQLite integrity check: "
                             f"{'; '.join(problems[:3])}); it cannot be read")
        tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        row = (c.execute("SELECT value FROM meta WHERE name = '_schema'").fetchone()
               if {"meta", "rollouts"} <= tables else None)
        if row is None:
            raise StoreError(f"{self.path} is an SQLite file but not a rollout store (no "
                             "rollouts/meta tables)")
        if json.loads(row[0]) != _SCHEMA_VERSION:
            raise StoreError(f"{self.path} has store schema {row[0]}, this version reads "
                             f"schema {_SCHEMA_VERSION}")

    def add(self, record: RolloutRecord) -> None:
        """Store one finished rollout and commit it before returning.

        :param record: the rollout; ``created`` is set to now when it is 0.
        :raises ValueError: if the key is already stored, or the record is inconsistent.
        """
        _validate(record)
        created = record.created or time.time()
        values = (record.key, json.dumps(list(record.perturbations)), int(record.seed),
                  record.status, None if record.success is None else int(record.success),
                  int(record.steps), float(record.duration), record.agent_step, record.reason,
                  record.video, created)
        with self._lock:
            try:
                self._conn.execute(f"INSERT INTO rollouts ({', '.join(_COLUMNS)}) "
                                   f"VALUES ({', '.join('?' * len(_COLUMNS))})", values)
            except sqlite3.IntegrityError:
                raise ValueError(f"rollout key {record.key!r} is already in {self.path}; keys are "
                                 "unique (check has() before re-running a rollout)") from None

    def has(self, key: str) -> bool:
        """Whether a rollout with this key is stored.

        :param key: the rollout key.
        """
        with self._lock:
            return self._conn.execute("SELECT 1 FROM rollouts WHERE key = ?",
                                      (key,)).fetchone() is not None

    def keys(self, prefix: str = "") -> set[str]:
        """Keys of stored rollouts that start with ``prefix``.

        :param prefix: key prefix, e.g. ``sweep/``; empty for all.
        """
        with self._lock:
            rows = self._conn.execute("SELECT key FROM rollouts WHERE substr(key, 1, ?) = ?",
                                      (len(prefix), prefix)).fetchall()
        return {r[0] for r in rows}

    def count(self, prefix: str = "") -> int:
        """Number of stored rollouts whose key starts with ``prefix``.

        :param prefix: key prefix; empty for all.
        """
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM rollouts WHERE substr(key, 1, ?) = ?",
                                      (len(prefix), prefix)).fetchone()[0]

    def records(self, prefix: str = "") -> list[RolloutRecord]:
        """Stored rollouts whose key starts with ``prefix``, in insertion order.

        :param prefix: key prefix; empty for all.
        """
        with self._lock:
            rows = self._conn.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM rollouts WHERE substr(key, 1, ?) = ? "
                "ORDER BY id", (len(prefix), prefix)).fetchall()
        return [_row_to_record(r) for r in rows]

    def get_meta(self, name: str, default: Any = None) -> Any:
        """A run-level value stored with :meth:`set_meta`, or ``default``.

        :param name: the value's name.
        :param default: returned when ``name`` was never set.
        """
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set_meta(self, name: str, value: Any) -> None:
        """Store (or replace) a JSON-serialisable run-level value and commit it.

        :param name: the value's name.
        :param value: anything :func:`json.dumps` accepts.
        :raises TypeError: if ``value`` is not JSON-serialisable.
        """
        text = json.dumps(value)
        with self._lock:
            self._conn.execute("INSERT INTO meta (name, value) VALUES (?, ?) "
                               "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                               (name, text))

    def close(self) -> None:
        """Close the database; later calls fail."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
