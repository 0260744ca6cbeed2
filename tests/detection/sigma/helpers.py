"""Building rules and events for the Sigma engine tests."""

from __future__ import annotations

import textwrap
from typing import Any

from detection.sigma.engine import SigmaDetector
from detection.sigma.ruleset import compile_texts
from govsoc.events import Event, event_id

PROCESS_CREATION = "    category: process_creation\n    product: windows"


def rule_text(detection: str, logsource: str = PROCESS_CREATION, *,
              title: str = "Test rule", rule_id: str = "5d0b1e2a-0000-4000-8000-000000000001",
              level: str = "high", extra: str = "") -> str:
    return (
        f"title: {title}\nid: {rule_id}\nstatus: test\nlevel: {level}\n"
        "tags:\n    - attack.execution\n    - attack.t1059.001\n"
        f"logsource:\n{logsource}\n"
        "detection:\n" + textwrap.indent(textwrap.dedent(detection).strip("\n"), "    ")
        + "\n" + extra)


def detector(*texts: str) -> SigmaDetector:
    ruleset = compile_texts(list(texts))
    errors = [str(p) for p in ruleset.errors]
    assert not errors, errors
    return SigmaDetector(ruleset)


def sysmon_event(event_code: int = 1, n: int = 0, **data: Any) -> Event:
    """A Sysmon event shaped as the EVTX collector produces it."""
    return {
        "@timestamp": "2026-11-20T08:00:00.000Z",
        "event": {"kind": "event", "dataset": "windows.sysmon_operational",
                  "module": "windows", "code": str(event_code),
                  "id": event_id("test", n)},
        "host": {"name": "WS01"},
        "winlog": {"channel": "Microsoft-Windows-Sysmon/Operational",
                   "event_id": str(event_code), "computer_name": "WS01",
                   "provider_name": "Microsoft-Windows-Sysmon",
                   "event_data": data},
    }


def matches(det: SigmaDetector, event: Event) -> bool:
    return bool(det.match_event(event))
