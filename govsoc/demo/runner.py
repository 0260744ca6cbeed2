"""Runs the scenario through the real service, the way a network delivers it.

Syslog goes over UDP (the LGSP gateway) and TCP (mail) to the service's
listeners, the web servers' logs are appended to tailed files, the Windows
servers' Winlogbeat export and the DMZ sensor's capture are dropped into watched
folders, and the webshell and the defacement are written into the YARA-watched
web root. Nothing is inserted into the store directly.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from govsoc.config import Config, load_config
from govsoc.demo.scenario import EXPECTED_ALERTS, NORMAL_PAGE, Scenario, build
from store.base import Alert, AlertFilter, EventQuery, Severity, Store

log = logging.getLogger("govsoc.demo")


@dataclass
class DemoResult:
    events: int
    alerts: list[Alert]
    cases: int
    missing: list[str] = field(default_factory=list)
    background_noise: list[Alert] = field(default_factory=list)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def demo_config(root: Path, console_port: int, udp_port: int, tcp_port: int,
                store_yaml: str = "") -> Config:
    """The ``govsoc.yml`` of the demo data centre, written under ``root``;
    ``store_yaml`` replaces the store section (the search cluster instead of SQLite)."""
    from govsoc.service import import_input_sections

    import_input_sections()
    for sub in ("logs/iis", "logs/nginx", "drop/pcap", "drop/winlog", "wwwroot/uploads"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    text = f"""# the demo data centre: every input of a single-server deployment
data_dir: {root / 'data'}
inputs:
  syslog:
    - {{protocol: udp, host: 127.0.0.1, port: {udp_port}}}
    - {{protocol: tcp, host: 127.0.0.1, port: {tcp_port}}}
  tail:
    - {{paths: ['{root / 'logs/iis'}/*.log'], format: iis, poll_seconds: 0.2}}
    - {{paths: ['{root / 'logs/nginx'}/access.log'], format: nginx, poll_seconds: 0.2}}
  pcap_drop: ['{root / 'drop/pcap'}']
  winlog_drop: ['{root / 'drop/winlog'}']
detection:
  yara:
    watch:
      paths: ['{root / 'wwwroot'}']
      poll_seconds: 1
      settle_seconds: 0.3
console:
  host: 127.0.0.1
  port: {console_port}
{store_yaml}"""
    path = root / "govsoc.yml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, env={})


def _drop(path: Path, data: bytes) -> None:
    """Write then rename, as a file transfer tool finishing a copy would."""
    temp = path.with_name("." + path.name + ".part")
    temp.write_bytes(data)
    os.replace(temp, path)


def deliver(scenario: Scenario, root: Path, udp_port: int, tcp_port: int,
            files: dict[str, Path], progress: Callable[[str], None]) -> None:
    """Send and write the scenario into the service's inputs, in story order."""
    progress(f"syslog: {len(scenario.syslog)} messages over UDP and TCP")
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tcp = socket.create_connection(("127.0.0.1", tcp_port), timeout=10)
    try:
        for n, (_when, host, message) in enumerate(scenario.syslog):
            if host.startswith("mail"):
                tcp.sendall(f"{len(message)} ".encode() + message)  # octet counting
            else:
                udp.sendto(message, ("127.0.0.1", udp_port))
            if n % 50 == 49:
                time.sleep(0.05)  # a server's pace, not a flood
    finally:
        udp.close()
        tcp.close()
    progress(f"web logs: {len(scenario.iis_log)} IIS and {len(scenario.nginx_log)} nginx lines")
    iis = root / "logs/iis/u_ex261120.log"
    nginx = root / "logs/nginx/access.log"
    for source, target in ((files["iis"], iis), (files["nginx"], nginx)):
        with target.open("ab") as out:
            out.write(source.read_bytes())
    progress(f"Windows: {len(scenario.winlog)} records (Winlogbeat export)")
    _drop(root / "drop/winlog/winlogbeat-2026.11.20.ndjson", files["winlog"].read_bytes())
    progress(f"sensor: a capture of {len(scenario.packets)} packets")
    _drop(root / "drop/pcap/sensor-dmz-2026.11.20.pcap", files["pcap"].read_bytes())
    for _when, relative, content in scenario.web_root_writes:
        progress(f"web root: {relative} written")
        target = root / "wwwroot" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
        time.sleep(0.5)


def wait_until_quiet(store: Store, service: Any, timeout: float, quiet: float = 4.0) -> int:
    """Wait until the store stops growing and the queue is empty; returns the count."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        store.refresh()
        count = store.count_events(EventQuery())
        if count != last or service.queue.qsize():
            last, since = count, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
        time.sleep(0.5)
    return last


def evaluate(store: Store) -> DemoResult:
    """Which stages of the story raised their alert, and what else was raised."""
    store.refresh()
    alerts: list[Alert] = []
    cursor = None
    while True:
        page = store.list_alerts(AlertFilter(), limit=500, after=cursor)
        alerts.extend(page.items)
        cursor = page.next_cursor
        if not cursor:
            break
    missing = []
    for stage, fragment, level in EXPECTED_ALERTS:
        if not any(fragment.lower() in a.rule_name.lower()
                   and a.severity.rank >= Severity(level).rank for a in alerts):
            missing.append(f"{stage} ({fragment}, {level})")
    story = [fragment.lower() for _, fragment, _ in EXPECTED_ALERTS]
    noise = [a for a in alerts if a.severity.rank > Severity.LOW.rank
             and not any(f in a.rule_name.lower() for f in story)]
    return DemoResult(events=store.count_events(EventQuery()), alerts=alerts,
                      cases=len(store.list_cases(limit=1000).items), missing=missing,
                      background_noise=noise)


def run_demo(root: Path, *, console_port: int | None = None, serve: bool = True,
             progress: Callable[[str], None] = print, timeout: float = 600,
             store_yaml: str = "") -> DemoResult:
    """Build the scenario, run it through ``govsoc run``'s service, report the outcome."""
    from govsoc.service import Service
    from store import open_store

    root.mkdir(parents=True, exist_ok=True)
    port = console_port or 8080
    udp_port, tcp_port = free_port(socket.SOCK_DGRAM), free_port()
    config = demo_config(root, port, udp_port, tcp_port, store_yaml)
    progress("building the scenario (scapy traffic, syslog, web and Windows logs)…")
    scenario = build()
    files = scenario.write(root / "scenario")
    (root / "wwwroot" / "index.html").write_text(NORMAL_PAGE, encoding="utf-8")
    store = open_store(config)
    service = Service(config, store, serve_console=serve)
    service.start()
    try:
        time.sleep(2.0)  # listeners bound, watches set
        deliver(scenario, root, udp_port, tcp_port, files, progress)
        progress("waiting for the service to take everything in…")
        wait_until_quiet(store, service, timeout)
        if service.automation is not None:
            service.automation.drain()
        result = evaluate(store)
    except BaseException:
        service.stop()
        store.close()
        raise
    if not serve:
        service.stop()
        result = evaluate(store)
        store.close()
    else:
        result.__dict__["service"] = service
    return result
