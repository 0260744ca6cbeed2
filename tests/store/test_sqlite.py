"""What only the SQLite engine has: its file, its damage, its schema version."""

from __future__ import annotations

import os
import sqlite3

import pytest

from govsoc.errors import StoreCorruptError, StoreError, StoreUnavailableError
from store.base import EventQuery
from store.sqlite import SCHEMA_VERSION, SQLiteStore
from tests.store.test_contract import make_events


def test_corrupted_file_is_named(tmp_path):
    path = tmp_path / "govsoc.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreCorruptError) as info:
        SQLiteStore(path)
    assert str(path) in str(info.value) and ".recover" in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_data_dir(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(StoreUnavailableError) as info:
        SQLiteStore(locked / "govsoc.db")
    assert str(locked) in str(info.value)


def test_unwritable_data_dir_even_for_root(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a directory should be")
    with pytest.raises(StoreUnavailableError) as info:
        SQLiteStore(blocker / "sub" / "govsoc.db")
    assert "data directory" in str(info.value)


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "govsoc.db"
    SQLiteStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        SQLiteStore(path)


def test_data_survives_reopen_and_second_process_view(tmp_path):
    path = tmp_path / "govsoc.db"
    first = SQLiteStore(path)
    first.insert_events(make_events(10))
    second = SQLiteStore(path)  # another handle, as a second process would have
    assert second.count_events(EventQuery()) == 10
    first.close()
    second.close()
    assert SQLiteStore(path).count_events(EventQuery()) == 10


def test_audit_rows_cannot_be_changed_in_the_file(tmp_path):
    from datetime import UTC, datetime

    from store.base import AuditEntry

    path = tmp_path / "govsoc.db"
    store = SQLiteStore(path)
    store.append_audit(AuditEntry("alice", "login", "user", "alice", datetime.now(UTC)))
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM audit")
    conn.close()


def test_a_version_1_store_is_migrated_in_place(tmp_path):
    import sqlite3

    from store.sqlite import _MIGRATIONS, SCHEMA_VERSION, SQLiteStore

    path = tmp_path / "govsoc.db"
    conn = sqlite3.connect(path)
    for statement in _MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("INSERT INTO settings VALUES ('kept', '1')")
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()
    store = SQLiteStore(path)
    assert store.schema_version() == SCHEMA_VERSION >= 2
    assert store.get_setting("kept") == 1
    names = {r[0] for r in store._query("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "alerts_dashboard" in names


def test_a_new_store_uses_16k_pages_and_an_old_one_keeps_its_own(tmp_path):
    import sqlite3

    from store.sqlite import SQLiteStore

    fresh = SQLiteStore(tmp_path / "new" / "govsoc.db")
    assert fresh._query("PRAGMA page_size")[0][0] == 16384
    fresh.close()
    old_path = tmp_path / "old.db"
    conn = sqlite3.connect(old_path)
    conn.execute("PRAGMA page_size=4096")
    conn.execute("CREATE TABLE keep (x)")
    conn.commit()
    conn.close()
    old = SQLiteStore(old_path)
    assert old._query("PRAGMA page_size")[0][0] == 4096
    assert old.schema_version() >= 2
