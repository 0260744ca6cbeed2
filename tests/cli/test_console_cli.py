"""``govsoc users`` and ``govsoc console`` as an administrator runs them."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

GOVSOC = [sys.executable, "-m", "govsoc"]


def run(args, cwd: Path, stdin: str | None = None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSOC_")}
    return subprocess.run(GOVSOC + args, cwd=cwd, input=stdin, capture_output=True, text=True,
                          env=env, timeout=120)


def cli(args, data_dir: Path, stdin: str | None = None):
    """The govsoc command in this process (the same click group the console script runs)."""
    from click.testing import CliRunner

    from govsoc.cli import cli as group

    return CliRunner().invoke(group, ["--data-dir", str(data_dir), *args], input=stdin,
                              env={"GOVSOC_CONFIG": None})


def test_users_add_list_set_role_disable(tmp_path):
    data = tmp_path / "govsoc-data"
    assert cli(["init", "--password-stdin"], data, "correct horse battery\n").exit_code == 0
    added = cli(["users", "add", "lan", "--role", "analyst", "--password-stdin"], data,
                "another long password\n")
    assert added.exit_code == 0, added.output
    again = cli(["users", "add", "lan", "--role", "analyst", "--password-stdin"], data,
                "another long password\n")
    assert again.exit_code != 0 and "already exists" in again.output
    short = cli(["users", "add", "minh", "--role", "analyst", "--password-stdin"], data,
                "short\n")
    assert short.exit_code != 0 and "at least 10 characters" in short.output
    assert cli(["users", "set-role", "lan", "manager"], data).exit_code == 0
    assert cli(["users", "disable", "lan"], data).exit_code == 0
    listed = cli(["users", "list", "--format", "jsonl"], data)
    users = {row["user"]["name"]: row for row in map(json.loads, listed.output.splitlines())}
    assert users["lan"]["role"] == "manager" and users["lan"]["disabled"] is True
    assert users["admin"]["role"] == "admin"
    assert cli(["users", "set-role", "nobody", "admin"], data).exit_code != 0
    # the changes are in the audit trail, attributed to the command line
    from govsoc.config import load_config
    from store import open_store
    from store.base import AuditFilter

    store = open_store(load_config(None, data_dir=data, env={}))
    entries = store.list_audit(AuditFilter(target_id="lan")).items
    store.close()
    assert {"user.create", "user.role", "user.disable"} <= {e.action for e in entries}
    assert all(e.actor.startswith("cli:") for e in entries)


def test_users_add_from_a_script(tmp_path):
    """The console script itself, with the password on stdin and no terminal."""
    assert run(["init", "--password-stdin"], tmp_path, "correct horse battery\n").returncode == 0
    added = run(["users", "add", "lan", "--role", "detection_engineer", "--password-stdin"],
                tmp_path, "another long password\n")
    assert added.returncode == 0, added.stderr
    assert "lan" in run(["users", "list"], tmp_path).stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_console_is_served_by_waitress(tmp_path):
    assert run(["init", "--password-stdin"], tmp_path, "correct horse battery\n").returncode == 0
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSOC_")}
    server = subprocess.Popen([*GOVSOC, "console", "--host", "127.0.0.1", "--port", str(port)],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/login") as response:
                    body = response.read().decode()
                    headers = response.headers
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.3)
        assert headers["Server"] == "govsoc"  # waitress, not the development server
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert re.search(r'name="csrf_token"', body)
    finally:
        server.terminate()
        server.wait(timeout=10)
