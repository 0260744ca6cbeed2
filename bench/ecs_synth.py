"""Deterministic synthetic ECS events of the kinds govsoc ingests (for benchmarks)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

T0 = datetime(2026, 11, 1, tzinfo=UTC)
PATHS = ["/", "/dich-vu-cong/nop-ho-so", "/tra-cuu-ho-so", "/api/lgsp/v1/citizen/status",
         "/thu-tuc-hanh-chinh", "/static/js/app.js", "/tin-tuc/thong-bao"]
NAMES = ["dichvucong.gov.vn", "update.microsoft.com", "lgsp.example.gov.vn",
         "mail.example.gov.vn", "ocsp.digicert.com", "portal.example.gov.vn"]
IMAGES = [r"C:\Windows\System32\svchost.exe", r"C:\Windows\explorer.exe",
          r"C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE",
          r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
          r"C:\Windows\System32\cmd.exe"]


def synth_events(n: int, seed: int = 1) -> Iterator[dict[str, Any]]:
    rnd = random.Random(seed)
    for i in range(n):
        ts = (T0 + timedelta(milliseconds=i * 37)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        kind = i % 10
        src = f"113.161.{rnd.randint(0, 255)}.{rnd.randint(1, 254)}"
        if kind < 4:
            path = rnd.choice(PATHS)
            status = rnd.choice((200, 200, 200, 304, 404, 500))
            yield {"@timestamp": ts,
                   "event": {"kind": "event", "dataset": "nginx.access", "module": "nginx",
                             "category": ["web"], "type": ["access"],
                             "outcome": "success" if status < 400 else "failure",
                             "original": f'{src} - - [01/Nov/2026:00:00:00 +0000] "GET {path} '
                                         f'HTTP/1.1" {status} {rnd.randint(200, 90000)} "-" '
                                         f'"Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"'},
                   "host": {"name": "portal01"}, "source": {"ip": src},
                   "http": {"request": {"method": "GET"}, "response": {"status_code": status}},
                   "url": {"original": path, "path": path},
                   "user_agent": {"original": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"}}
        elif kind < 6:
            yield {"@timestamp": ts,
                   "event": {"kind": "event", "dataset": "network.dns", "module": "network",
                             "category": ["network"], "type": ["protocol"]},
                   "source": {"ip": f"10.10.{rnd.randint(1, 40)}.{rnd.randint(2, 250)}",
                              "port": rnd.randint(1024, 65535)},
                   "destination": {"ip": "10.10.0.53", "port": 53},
                   "network": {"transport": "udp", "protocol": "dns"},
                   "dns": {"id": str(rnd.randint(0, 65535)),
                           "question": {"name": rnd.choice(NAMES), "type": "A"},
                           "response_code": "NOERROR"}}
        elif kind < 8:
            yield {"@timestamp": ts,
                   "event": {"kind": "event", "dataset": "network.connection",
                             "module": "network", "category": ["network"],
                             "type": ["connection", "end"]},
                   "source": {"ip": src, "port": rnd.randint(1024, 65535),
                              "bytes": rnd.randint(60, 90000), "packets": rnd.randint(1, 90)},
                   "destination": {"ip": "10.20.0.10", "port": 443,
                                   "bytes": rnd.randint(60, 900000),
                                   "packets": rnd.randint(1, 900)},
                   "network": {"transport": "tcp", "community_id": "1:abc",
                               "connection": {"state": "SF"}}}
        elif kind == 8:
            failed = rnd.random() < 0.3
            user = rnd.choice(("root", "admin", "canbo01", "ketoan"))
            yield {"@timestamp": ts,
                   "event": {"kind": "event", "dataset": "system.auth", "module": "system",
                             "category": ["authentication"], "type": ["start"],
                             "action": "ssh_login_failed" if failed else "ssh_login",
                             "outcome": "failure" if failed else "success",
                             "original": f"Nov  1 00:00:00 portal01 sshd[{i % 30000}]: "
                                         f"{'Failed' if failed else 'Accepted'} password for "
                                         f"{user} from {src} port 4242 ssh2"},
                   "host": {"name": "portal01"}, "source": {"ip": src, "port": 4242},
                   "user": {"name": user}, "process": {"name": "sshd", "pid": i % 30000}}
        else:
            image = rnd.choice(IMAGES)
            yield {"@timestamp": ts,
                   "event": {"kind": "event", "dataset": "windows.sysmon_operational",
                             "module": "windows", "code": "1",
                             "category": ["process"], "type": ["start"]},
                   "host": {"name": f"PC-{rnd.randint(1, 300):03d}.sotttt.local"},
                   "winlog": {"channel": "Microsoft-Windows-Sysmon/Operational",
                              "event_id": "1", "record_id": str(i),
                              "event_data": {"Image": image, "CommandLine": f'"{image}" -k x',
                                             "ParentImage": r"C:\Windows\explorer.exe",
                                             "User": r"SOTTTT\canbo01",
                                             "IntegrityLevel": "Medium"}},
                   "process": {"executable": image, "command_line": f'"{image}" -k x',
                               "pid": rnd.randint(100, 60000)},
                   "user": {"name": "canbo01", "domain": "SOTTTT"}}


def write_jsonl(path: str, n: int, seed: int = 1) -> int:
    size = 0
    with open(path, "wb") as out:
        for event in synth_events(n, seed):
            line = orjson.dumps(event) + b"\n"
            size += len(line)
            out.write(line)
    return size
