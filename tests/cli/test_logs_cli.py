"""The text log commands as a user runs them: ingest, listen syslog, tail."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from store.base import EventQuery
from store.sqlite import SQLiteStore

GOVSOC = [sys.executable, "-m", "govsoc"]


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("GOVSOC_")}


def run(args, cwd):
    return subprocess.run([*GOVSOC, "--data-dir", str(cwd / "data"), *args], cwd=cwd,
                          capture_output=True, text=True, env=env(), timeout=180)


def stored(cwd: Path, dataset: str) -> list[dict]:
    store = SQLiteStore(cwd / "data" / "govsoc.db")
    try:
        return store.search_events(EventQuery(datasets=[dataset], limit=1000)).items
    finally:
        store.close()


def test_ingest_auth_access_auditd(tmp_path):
    auth = tmp_path / "auth.log"
    auth.write_text(
        "Mar  3 10:00:00 web1 sshd[1]: Failed password for root from 198.51.100.1 port 1 ssh2\n"
        "Mar  3 10:00:01 web1 sshd[1]: Accepted password for root from 198.51.100.1 port 2 ssh2\n"
        "\x00\x01 binary junk\n")
    res = run(["ingest", "auth", "--no-detect", str(auth)], tmp_path)
    assert res.returncode == 3, res.stderr  # 3: some records became dead letters
    assert "stored 2" in res.stdout and "rejected 1" in res.stdout
    actions = sorted(e["event"]["action"] for e in stored(tmp_path, "system.auth"))
    assert actions == ["ssh_login", "ssh_login_failed"]

    iis = tmp_path / "u_ex240301.log"
    iis.write_text("#Software: Microsoft Internet Information Services 10.0\n"
                   "#Fields: date time c-ip cs-method cs-uri-stem sc-status\n"
                   "2024-03-01 01:02:03 198.51.100.20 GET /shell.aspx 200\n")
    res = run(["ingest", "access", "--no-detect", str(iis)], tmp_path)
    assert res.returncode == 0, res.stderr
    assert [e["url"]["path"] for e in stored(tmp_path, "iis.access")] == ["/shell.aspx"]

    audit = tmp_path / "audit.log"
    audit.write_text(
        'type=SYSCALL msg=audit(1700000000.1:7): arch=c000003e syscall=59 success=yes exit=0 '
        'pid=5 ppid=1 uid=0 comm="id" exe="/usr/bin/id"\n'
        'type=EXECVE msg=audit(1700000000.1:7): argc=1 a0="id"\n')
    res = run(["ingest", "auditd", "--no-detect", str(audit)], tmp_path)
    assert res.returncode == 0, res.stderr
    [event] = stored(tmp_path, "auditd.log")
    assert event["process"]["args"] == ["id"]

    # the same file again: every event is a duplicate of one already stored
    res = run(["ingest", "auth", "--no-detect", str(auth)], tmp_path)
    assert "stored 0  duplicates 2" in res.stdout


def free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_listen_syslog_stores_until_sigterm(tmp_path):
    udp, tcp = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_STREAM)
    proc = subprocess.Popen(
        [*GOVSOC, "--data-dir", str(tmp_path / "data"), "listen", "syslog", "--host",
         "127.0.0.1", "--udp", str(udp), "--tcp", str(tcp), "--no-detect"],
        cwd=tmp_path, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                conn = socket.create_connection(("127.0.0.1", tcp), timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        with conn:
            conn.sendall(b"<38>Mar  3 10:00:00 gw sshd[9]: Invalid user oracle from "
                         b"192.0.2.44 port 5050\n")
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.sendto(b"<13>1 2024-01-01T00:00:00Z gw app - - - hello over udp",
                    ("127.0.0.1", udp))
        sock.sendto(b"\xde\xad\xbe\xef", ("127.0.0.1", udp))
        time.sleep(1.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "listening for syslog on 127.0.0.1: udp" in err
    assert "received 3" in out and "udp dropped 0" in out
    assert "stored 2" in out and "rejected 1" in out
    [auth] = stored(tmp_path, "system.auth")
    assert auth["event"]["action"] == "ssh_invalid_user"
    assert auth["source"]["ip"] == "192.0.2.44"
    assert auth["log"]["source"]["address"].startswith("127.0.0.1:")
    [generic] = stored(tmp_path, "syslog")
    assert generic["message"] == "hello over udp"


def test_tail_once_resumes_from_the_store(tmp_path):
    log = tmp_path / "access.log"
    line = ('198.51.100.9 - - [10/Oct/2024:13:55:36 +0700] "GET /a{} HTTP/1.1" 200 5 "-" '
            '"curl/8"\n')
    log.write_text("".join(line.format(i) for i in range(3)))
    res = run(["tail", "--once", "--format", "nginx", "--no-detect", str(log)], tmp_path)
    assert res.returncode == 0, res.stderr
    with log.open("a") as fh:
        fh.write(line.format(3))
    res = run(["tail", "--once", "--format", "nginx", "--no-detect", str(log)], tmp_path)
    assert "stored 1  duplicates 0" in res.stdout, res.stdout
    paths = sorted(e["url"]["path"] for e in stored(tmp_path, "nginx.access"))
    assert paths == ["/a0", "/a1", "/a2", "/a3"]
