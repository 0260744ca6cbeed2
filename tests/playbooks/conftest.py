"""Real peers for playbook tests: the SQLite store, an SMTP server and an HTTP receiver
on loopback, users with roles, and an engine over the shipped playbooks."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

import playbooks.settings  # noqa: F401 - registers the config sections
from govsoc.config import load_config


class SmtpSink:
    """aiosmtpd on a free loopback port; keeps every message it receives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[dict] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                sink.messages.append({"from": envelope.mail_from,
                                      "to": list(envelope.rcpt_tos),
                                      "data": envelope.content})
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=free_port())
        self.controller.start()
        self.port = self.controller.port

    def stop(self) -> None:
        self.controller.stop()


class HttpReceiver:
    """A loopback HTTP server that records each POST (path, headers, JSON body).

    ``status`` sets the answer code per path; ``delay`` makes it slow per path.
    """

    def __init__(self) -> None:
        self.calls: list[dict] = []
        self.status: dict[str, int] = {}
        self.delay: dict[str, float] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                receiver.calls.append({"path": self.path, "headers": dict(self.headers),
                                       "json": json.loads(body or b"null")})
                time.sleep(receiver.delay.get(self.path, 0))
                code = receiver.status.get(self.path, 200)
                payload = json.dumps({"ok": code < 400}).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def calls_to(self, path: str) -> list[dict]:
        return [c for c in self.calls if c["path"] == path]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_sink():
    sink = SmtpSink()
    yield sink
    sink.stop()


@pytest.fixture
def http_receiver():
    receiver = HttpReceiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    path = tmp_path / "assets.yml"
    path.write_text(yaml.safe_dump([
        {"name": "portal-web-01", "ips": ["10.10.1.15"], "hostnames": ["portal.tinh.gov.vn"],
         "owner": "Nguyễn Văn An", "unit": "Trung tâm Tích hợp dữ liệu",
         "system": "Cổng thông tin điện tử tỉnh", "security_level": 3},
    ], allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def intel_list(tmp_path: Path) -> Path:
    path = tmp_path / "bad-ips.txt"
    path.write_text("# local blocklist\n198.51.100.0/24,known scanner\nevil-c2.example,c2\n"
                    "44d88612fea8a8f36de82e1278abb02f,eicar\n", encoding="utf-8")
    return path


@pytest.fixture
def pb_config(tmp_path: Path, smtp_sink, http_receiver, inventory, intel_list):
    """A configuration whose peers are the loopback SMTP server and HTTP receiver."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    config_file = tmp_path / "govsoc.yml"
    config_file.write_text(yaml.safe_dump({
        "playbooks": {
            "smtp": {"host": "127.0.0.1", "port": smtp_sink.port, "sender": "soc@tinh.gov.vn",
                     "default_recipients": ["lanhdao@tinh.gov.vn"], "timeout": 5},
            "webhooks": {
                "soc_chat": {"url": http_receiver.url("/chat")},
                "disable_account": {"url": http_receiver.url("/idm/disable")},
                "isolate_host": {"url": http_receiver.url("/edr/isolate")},
            },
            "firewall": {"api_url": http_receiver.url("/fw/block"),
                         "never_block": ["10.0.0.0/8", "127.0.0.0/8"]},
            "inventory": {"path": str(inventory)},
            "intel": {"paths": [str(intel_list)]},
        },
        "reports": {"unit": {"name": "Sở Thông tin và Truyền thông tỉnh Thử Nghiệm",
                             "contact_name": "Trần Thị Bình", "phone": "0203 3822 888",
                             "email": "soc@tinh.gov.vn",
                             "system_name": "Cổng thông tin điện tử tỉnh",
                             "security_level": "3"}},
    }, allow_unicode=True), encoding="utf-8")
    return load_config(config_file, data_dir=data_dir, env={})


@pytest.fixture
def pb_store(pb_config):
    from store import open_store

    store = open_store(pb_config)
    yield store
    store.close()


@pytest.fixture
def users(pb_store):
    from store.base import Role, User

    for name, role in (("ana", Role.ANALYST), ("minh", Role.MANAGER), ("quan", Role.ADMIN)):
        pb_store.create_user(User(username=name, password_hash="x", role=role,
                                  created_at=datetime.now(UTC)))
    return pb_store


@pytest.fixture
def library():
    from playbooks.loader import load_library

    lib = load_library()
    assert not lib.errors, lib.errors
    return lib


@pytest.fixture
def engine(users, pb_config, library):
    from playbooks.engine import PlaybookEngine

    return PlaybookEngine(users, pb_config, library, sleep=lambda s: None)


def raise_alert(store, *, rule_id="test-rule", rule_name="Test rule", severity="high",
                tags=(), dataset=None, fields=None, group_key=None):
    """Record an alert in the store the way the detection pipeline does."""
    from store.base import NewAlert, Severity

    alert, _ = store.record_alerts([NewAlert(
        rule_id=rule_id, rule_name=rule_name, severity=Severity.parse(severity),
        group_key=group_key or f"{rule_id}:{json.dumps(fields, sort_keys=True)}",
        timestamp=datetime.now(UTC), tags=list(tags), dataset=dataset,
        fields=dict(fields or {}))], timedelta(hours=1))[0]
    return alert
