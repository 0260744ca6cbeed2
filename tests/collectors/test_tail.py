"""Following files: rotation, truncation, deletion, globs, checkpoints, kill -9."""

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from collectors.tail import FileTailer, checkpoint_name


def line(i: int) -> str:
    return (f"Mar  3 10:00:{i % 60:02d} web1 sshd[77]: Failed password for user{i} from "
            f"10.0.{i // 250 % 250}.{i % 250} port {1000 + i} ssh2\n")


def write(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)


def users(events) -> list[str]:
    return [e["user"]["name"] for e in events]


class Run:
    """Runs a following tailer in a thread and keeps what it hands out."""

    def __init__(self, tailer: FileTailer) -> None:
        self.tailer = tailer
        self.events: list[dict] = []
        self.rejected: list = []
        self.checkpoints: dict[str, dict] = {}
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for batch in self.tailer.batches():
            self.events += batch.events
            self.rejected += batch.rejected
            if batch.checkpoint:
                self.checkpoints[batch.checkpoint[0]] = batch.checkpoint[1]

    def pull(self, until_users: int | None = None, seconds: float = 0.3) -> None:
        """Wait until ``until_users`` events arrived (or let it run ``seconds``)."""
        if until_users is None:
            time.sleep(seconds)
            return
        deadline = time.monotonic() + 10
        while len(self.events) < until_users and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)  # anything beyond the expected count would show up now

    def stop(self) -> None:
        self.tailer.stop()
        self.thread.join(10)
        assert not self.thread.is_alive()


def tailer(paths, **kwargs) -> FileTailer:
    kwargs.setdefault("poll_seconds", 0.01)
    return FileTailer([str(p) for p in paths], "auth", **kwargs)


def test_rename_and_create_rotation_loses_nothing(tmp_path):
    log = tmp_path / "auth.log"
    write(log, "".join(line(i) for i in range(10)))
    run = Run(tailer([log]))
    run.pull(until_users=10)
    os.rename(log, tmp_path / "auth.log.1")
    # the writer still has the old file open for a moment, and the new file starts
    write(tmp_path / "auth.log.1", line(10))
    write(log, "".join(line(i) for i in range(11, 15)))
    run.pull(until_users=15)
    assert users(run.events) == [f"user{i}" for i in range(15)]
    assert run.tailer.counters["rotations"] == 1
    assert len({e["event"]["id"] for e in run.events}) == 15


def test_copytruncate_starts_the_file_again(tmp_path):
    log = tmp_path / "auth.log"
    write(log, "".join(line(i) for i in range(5)))
    run = Run(tailer([log]))
    run.pull(until_users=5)
    with open(log, "r+b") as fh:
        fh.truncate(0)
    write(log, line(5))
    run.pull(until_users=6)
    assert users(run.events) == [f"user{i}" for i in range(6)]
    assert run.tailer.counters["truncations"] == 1
    # the new line sits at offset 0 like the first one did, yet it is a new event
    assert run.events[0]["log"]["offset"] == run.events[5]["log"]["offset"] == 0
    assert run.events[0]["event"]["id"] != run.events[5]["event"]["id"]


def test_deleted_file_is_drained_counted_and_the_rest_goes_on(tmp_path):
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    write(a, line(0))
    write(b, line(1))
    run = Run(tailer([tmp_path / "*.log"]))
    run.pull(until_users=2)
    write(a, line(2))
    os.remove(a)
    run.pull()
    write(b, line(3))
    run.pull(until_users=4)
    assert sorted(users(run.events)) == ["user0", "user1", "user2", "user3"]
    assert run.tailer.counters["files_deleted"] == 1
    assert len(run.rejected) == 1
    assert "deleted while being read" in run.rejected[0].reason
    assert run.rejected[0].source.endswith("a.log")


def test_glob_picks_up_new_files(tmp_path):
    run = Run(tailer([tmp_path / "*.log"]))
    run.pull()
    write(tmp_path / "late.log", line(0))
    run.pull(until_users=1)
    assert users(run.events) == ["user0"]


def test_partial_line_waits_for_its_newline(tmp_path):
    log = tmp_path / "auth.log"
    text = line(0)
    write(log, text[:30])
    run = Run(tailer([log]))
    run.pull()
    assert run.events == []
    write(log, text[30:])
    run.pull(until_users=1)
    assert users(run.events) == ["user0"]


def test_resume_from_checkpoint_without_repeats(tmp_path):
    log = tmp_path / "auth.log"
    write(log, "".join(line(i) for i in range(8)))
    first = Run(tailer([log], batch_size=3))
    first.pull(until_users=8)
    first.stop()
    write(log, "".join(line(i) for i in range(8, 12)))
    second = Run(tailer([log], checkpoints=first.checkpoints))
    second.pull(until_users=4)
    assert users(second.events) == [f"user{i}" for i in range(8, 12)]
    state = second.checkpoints[checkpoint_name(str(log))]
    assert state["offset"] == log.stat().st_size and state["inode"] == log.stat().st_ino


def test_rotation_while_stopped_finishes_the_old_file_first(tmp_path):
    log = tmp_path / "auth.log"
    write(log, "".join(line(i) for i in range(3)))
    first = Run(tailer([log]))
    first.pull(until_users=3)
    first.stop()
    write(log, line(3))  # written after the last checkpoint, before rotation
    os.rename(log, tmp_path / "auth.log.1")
    write(log, line(4))
    second = Run(tailer([log], checkpoints=first.checkpoints))
    second.pull(until_users=2)
    assert users(second.events) == ["user3", "user4"]


def test_huge_line_and_invalid_utf8_are_counted_not_fatal(tmp_path):
    log = tmp_path / "auth.log"
    write(log, line(0))
    with open(log, "ab") as fh:
        fh.write(b"Mar  3 10:00:00 web1 sshd[1]: " + b"Z" * (2 << 20) + b"\n")
        fh.write(b"Mar  3 10:00:01 web1 sshd[1]: Failed password for \xff\xfeadmin from "
                 b"10.9.9.9 port 22 ssh2\n")
    write(log, line(1))
    run = Run(tailer([log], max_line_bytes=1 << 20))
    run.pull(until_users=3)
    names = users(run.events)
    assert names[0] == "user0" and names[2] == "user1"
    assert names[1] == "\\xff\\xfeadmin" and "invalid_utf8" in run.events[1]["tags"]
    assert run.tailer.counters["truncated"] == 1 and len(run.rejected) == 1
    assert "longer than the limit" in run.rejected[0].reason
    assert len(run.rejected[0].original) == 1 << 20


def test_an_over_long_line_still_being_written_is_one_rejected_line(tmp_path):
    log = tmp_path / "auth.log"
    write(log, line(0))
    with open(log, "ab") as fh:  # a giant line whose end is not written yet
        fh.write(b"Mar  3 10:00:00 web1 sshd[1]: " + b"Z" * 1500)
    run = Run(tailer([log], max_line_bytes=1000))
    run.pull(until_users=1)
    run.pull(seconds=0.2)
    assert len(run.rejected) == 1 and run.tailer.counters["truncated"] == 1
    saved = run.checkpoints[checkpoint_name(str(log))]
    assert saved["in_long_line"] is True
    with open(log, "ab") as fh:  # more of it, then its end and a normal line
        fh.write(b"Z" * 3000)
    run.pull(seconds=0.2)
    with open(log, "ab") as fh:
        fh.write(b"Z" * 500 + b" end of the giant line\n")
    write(log, line(1))
    run.pull(until_users=2)
    run.stop()
    assert users(run.events) == ["user0", "user1"]
    assert len(run.rejected) == 1, [r.original[:40] for r in run.rejected]
    assert run.tailer.counters["truncated"] == 1 and run.tailer.counters["rejected"] == 1
    saved = run.checkpoints[checkpoint_name(str(log))]
    assert "in_long_line" not in saved and saved["offset"] == log.stat().st_size
    assert saved["line"] == 3


def test_a_restart_inside_an_over_long_line_skips_its_rest(tmp_path):
    log = tmp_path / "auth.log"
    write(log, line(0))
    with open(log, "ab") as fh:
        fh.write(b"Mar  3 10:00:00 web1 sshd[1]: " + b"Z" * 1500)
    first = Run(tailer([log], max_line_bytes=1000))
    first.pull(until_users=1)
    first.pull(seconds=0.2)
    first.stop()
    assert len(first.rejected) == 1
    with open(log, "ab") as fh:
        fh.write(b"Z" * 200 + b"\n")
    write(log, line(1))
    second = Run(tailer([log], checkpoints=first.checkpoints, max_line_bytes=1000))
    second.pull(until_users=1)
    second.stop()
    assert users(second.events) == ["user1"] and second.rejected == []
    assert second.events[0]["log"]["offset"] == log.stat().st_size - len(line(1))


# -- a real process killed with SIGKILL ----------------------------------------------

def _start(data_dir: Path, log: Path, cwd: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSOC_")}
    return subprocess.Popen(
        [sys.executable, "-c", "import sys; from govsoc.cli import main; sys.exit(main())",
         "--data-dir", str(data_dir), "tail", "--format", "auth", "--poll", "0.02",
         "--no-detect", "--status-every", "3600", str(log)],
        cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _stored(data_dir: Path) -> list[str]:
    from store.base import EventQuery
    from store.sqlite import SQLiteStore

    path = data_dir / "govsoc.db"
    if not path.exists():
        return []
    store = SQLiteStore(path)
    try:
        names: list[str] = []
        after = None
        while True:
            page = store.search_events(EventQuery(datasets=["system.auth"], limit=1000,
                                                  after=after))
            names += [e["user"]["name"] for e in page.items]
            if not page.next_cursor:
                return names
            after = page.next_cursor
    except Exception:  # the database may not be initialised yet by the child
        return []
    finally:
        store.close()


@pytest.mark.slow
def test_kill_9_resumes_with_nothing_lost_and_nothing_duplicated(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    log = tmp_path / "auth.log"
    log.touch()
    total, chunk = 4000, 100
    proc = _start(data_dir, log, tmp_path)
    kills = 0
    stored_before = 0
    try:
        for n in range(total // chunk):
            write(log, "".join(line(i) for i in range(n * chunk, (n + 1) * chunk)))
            time.sleep(0.02)
            if n in (6, 14, 23, 31):
                # once it has stored something new, kill it mid-stream without warning
                deadline = time.monotonic() + 60
                while len(_stored(data_dir)) <= stored_before and time.monotonic() < deadline:
                    time.sleep(0.05)
                time.sleep(0.02 * (n % 4))
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                kills += 1
                stored_before = len(_stored(data_dir))
                proc = _start(data_dir, log, tmp_path)
            if n == 18:
                os.rename(log, tmp_path / "auth.log.1")
                log.touch()
        deadline = time.monotonic() + 90
        names = _stored(data_dir)
        while len(names) < total and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            time.sleep(0.5)
            names = _stored(data_dir)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert kills == 4
    assert len(names) == total, f"stored {len(names)} of {total}"
    assert sorted(names) == sorted(f"user{i}" for i in range(total))
