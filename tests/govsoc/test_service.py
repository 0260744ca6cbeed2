"""The supervised service: real inputs, a real store, real HTTP, real signals."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from collectors.base import Batch
from govsoc.config import load_config
from govsoc.events import event_id, new_event
from govsoc.service import Service
from store.base import EventQuery
from store.sqlite import SQLiteStore

AUTH = ("Nov 23 10:00:{:02d} portal01 sshd[{}]: Failed password for root from 45.77.12.{} "
        "port 4000 ssh2\n")


def free_port(kind=socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def make_config(tmp_path: Path, log: Path, udp: int, web: int):
    from govsoc.service import import_input_sections

    import_input_sections()
    path = tmp_path / "govsoc.yml"
    path.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        f"inputs:\n  syslog:\n    - {{protocol: udp, host: 127.0.0.1, port: {udp}}}\n"
        f"  tail:\n    - {{paths: ['{log}'], format: auth, poll_seconds: 0.05}}\n"
        f"console:\n  port: {web}\n  host: 127.0.0.1\n")
    return load_config(path, env={})


def start_service(path: Path):
    """The service of the govsoc.yml at ``path``, started without the console."""
    from govsoc.service import import_input_sections

    import_input_sections()
    config = load_config(path, env={})
    store = SQLiteStore(config.sqlite_path)
    service = Service(config, store, serve_console=False)
    service.start()
    return config, store, service


def test_inputs_health_metrics_and_clean_stop(tmp_path):
    log = tmp_path / "auth.log"
    log.write_text("".join(AUTH.format(i, 100 + i, i) for i in range(5)))
    udp, web = free_port(socket.SOCK_DGRAM), free_port()
    config = make_config(tmp_path, log, udp, web)
    store = SQLiteStore(config.sqlite_path)
    service = Service(config, store)
    service.start()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"<38>1 2026-11-23T10:01:00Z portal01 sshd 77 - - Failed password for "
                     b"admin from 198.51.100.7 port 5000 ssh2", ("127.0.0.1", udp))
        assert wait_for(lambda: store.count_events(EventQuery()) == 6)
        body = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{web}/healthz").read())
        assert body["status"] == "ok" and len(body["inputs"]) == 2
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{web}/metrics").read().decode()
        assert 'govsoc_input_records_total{input="syslog"} 1.0' in metrics
        assert "govsoc_events_stored_total 6.0" in metrics
        assert 'govsoc_udp_dropped_total{input="syslog"} 0.0' in metrics
        with log.open("a") as out:
            out.write(AUTH.format(30, 999, 99))
        assert wait_for(lambda: store.count_events(EventQuery()) == 7)
    finally:
        service.stop()
    assert not service._writer.is_alive()
    assert all(i.status.state == "stopped" for i in service.inputs)
    store.close()


def test_restart_resumes_from_checkpoints_without_duplicates(tmp_path):
    log = tmp_path / "auth.log"
    log.write_text("".join(AUTH.format(i, 100 + i, i) for i in range(10)))
    config = make_config(tmp_path, log, free_port(socket.SOCK_DGRAM), free_port())
    store = SQLiteStore(config.sqlite_path)
    first = Service(config, store, serve_console=False)
    first.start()
    assert wait_for(lambda: store.count_events(EventQuery()) == 10)
    first.stop()
    with log.open("a") as out:
        out.write("".join(AUTH.format(40 + i, 200 + i, i) for i in range(5)))
    second = Service(config, store, serve_console=False)
    second.start()
    assert wait_for(lambda: store.count_events(EventQuery()) == 15)
    time.sleep(0.5)
    second.stop()
    assert second.pipeline.stats.duplicates == 0
    assert store.count_events(EventQuery()) == 15
    store.close()


class Flaky:
    """A source that fails on its first two starts, then delivers one event."""

    starts = 0

    def __init__(self) -> None:
        Flaky.starts += 1
        self.name = "flaky"
        self.stopped = False

    def batches(self):
        if Flaky.starts <= 2:
            raise OSError("device not ready")
        event = new_event("test.flaky", "2026-11-23T10:00:00Z")
        event["event"]["id"] = event_id("flaky", 1)
        yield Batch(events=[event])
        while not self.stopped:
            time.sleep(0.05)

    def stop(self) -> None:
        self.stopped = True


def test_failing_input_is_restarted_with_backoff_and_visible(tmp_path, monkeypatch):
    import govsoc.service as service_module

    monkeypatch.setattr(service_module, "BACKOFF_FIRST", 0.1)
    config = load_config(None, data_dir=tmp_path, env={})
    store = SQLiteStore(config.sqlite_path)
    service = Service(config, store, inputs=[("flaky", "test", Flaky)], serve_console=False)
    service.start()
    try:
        assert wait_for(lambda: store.count_events(EventQuery()) == 1)
        status = service.inputs[0].status
        assert status.restarts == 2 and "device not ready" in status.last_error
        assert status.state == "running"
        healthy, body = service.health()
        assert healthy and body["inputs"][0]["restarts"] == 2
    finally:
        service.stop()
        store.close()


def test_sigterm_stops_the_process_cleanly(tmp_path):
    log = tmp_path / "auth.log"
    log.write_text("".join(AUTH.format(i, 100 + i, i) for i in range(3)))
    udp, web = free_port(socket.SOCK_DGRAM), free_port()
    make_config(tmp_path, log, udp, web)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSOC_")}
    proc = subprocess.Popen([sys.executable, "-m", "govsoc", "--config",
                             str(tmp_path / "govsoc.yml"), "run"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        def up():
            try:
                body = json.loads(urllib.request.urlopen(
                    f"http://127.0.0.1:{web}/healthz", timeout=1).read())
                return body["pipeline"]["stored"] == 3
            except OSError:
                return False
        assert wait_for(up, 30)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out
    assert "stopped: stored 3" in out


def test_watched_web_root_raises_yara_alert_and_sigma_alerts_flow(tmp_path):
    """A webshell written into a watched web root becomes a stored yara.match event and
    an alert; an SSH brute force arriving over syslog raises the Sigma correlation."""
    from store.base import AlertFilter

    webroot = tmp_path / "www"
    webroot.mkdir()
    udp = free_port(socket.SOCK_DGRAM)
    path = tmp_path / "govsoc.yml"
    path.write_text(
        f"data_dir: {tmp_path / 'data'}\n"
        f"inputs:\n  syslog:\n    - {{protocol: udp, host: 127.0.0.1, port: {udp}}}\n"
        f"detection:\n  yara:\n    watch:\n      paths: ['{webroot}']\n"
        f"      poll_seconds: 0.2\n      settle_seconds: 0.1\n"
        f"playbooks:\n  auto_run: false\n")
    config, store, service = start_service(path)
    try:
        time.sleep(1.0)
        (webroot / "shell.php").write_text(
            "<?php if(isset($_REQUEST['cmd'])){ echo '<pre>'; "
            "system($_REQUEST['cmd']); echo '</pre>'; } ?>")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for i in range(12):
                s.sendto(f"<38>Nov 23 10:00:{i:02d} portal01 sshd[{300 + i}]: Failed password "
                         f"for root from 45.77.12.201 port {4000 + i} ssh2".encode(),
                         ("127.0.0.1", udp))
        assert wait_for(lambda: len(store.list_alerts(AlertFilter(sources=["yara"])).items) >= 1,
                        30)
        assert wait_for(lambda: any("Brute Force" in a.rule_name
                                    for a in store.list_alerts().items), 30)
    finally:
        service.stop()
        store.close()
    yara_alert = SQLiteStore(config.sqlite_path).list_alerts(
        AlertFilter(sources=["yara"])).items[0]
    assert yara_alert.fields.get("file.path", "").endswith("shell.php")


def test_capture_in_drop_folder_scans_carved_bodies(tmp_path):
    """A capture dropped into the pcap folder is read once; an HTTP body carrying a
    webshell is carved, scanned by YARA and raised like any other alert."""
    from datetime import UTC, datetime

    from govsoc.demo.scenario import _Builder, write_capture
    from store.base import AlertFilter

    shell = (b"<?php if(isset($_REQUEST['cmd'])){ system($_REQUEST['cmd']); } ?>\n")
    builder = _Builder(7)
    builder.tcp_session(datetime(2026, 11, 20, 3, 0, tzinfo=UTC), "10.10.30.9",
                        "198.51.100.66", 80,
                        b"GET /s.php.txt HTTP/1.1\r\nHost: paste.example\r\n\r\n",
                        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                        + str(len(shell)).encode() + b"\r\n\r\n" + shell)
    drop = tmp_path / "pcap"
    drop.mkdir()
    path = tmp_path / "govsoc.yml"
    path.write_text(f"data_dir: {tmp_path / 'data'}\ninputs:\n  pcap_drop: ['{drop}']\n"
                    "playbooks:\n  auto_run: false\n")
    _config, store, service = start_service(path)
    try:
        write_capture(tmp_path / "x.pcap", builder.s.packets)
        (tmp_path / "x.pcap").rename(drop / "x.pcap")
        assert wait_for(lambda: store.list_alerts(AlertFilter(sources=["yara"])).items, 40)
        assert store.count_events(EventQuery(datasets=["network.http"])) == 1
    finally:
        service.stop()
        store.close()
