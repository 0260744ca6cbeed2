"""Correlation rules over the stream: counts, distinct values, order, windows, bounds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from detection.sigma import correlation
from detection.sigma.engine import SigmaDetector
from detection.sigma.ruleset import compile_texts
from govsoc.events import event_id

T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)

BASE = """title: Failed logon
id: 0b1e7e0c-0000-4000-8000-00000000000{n}
name: {name}
logsource:
    product: windows
    service: security
detection:
    sel:
        EventID: {eid}
    condition: sel
level: low
"""


def logon(eid: int, ip: str, user: str, at: datetime, n: int) -> dict:
    return {"@timestamp": at.isoformat().replace("+00:00", "Z"),
            "event": {"kind": "event", "dataset": "windows.security", "id": event_id("c", n)},
            "host": {"name": "DC01"},
            "winlog": {"channel": "Security", "event_id": str(eid),
                       "event_data": {"IpAddress": ip, "TargetUserName": user}}}


def detector(correlation_yaml: str) -> SigmaDetector:
    texts = [BASE.format(n=1, name="failed_logon", eid=4625),
             BASE.format(n=2, name="good_logon", eid=4624), correlation_yaml]
    ruleset = compile_texts(["---\n".join(texts)])
    assert not ruleset.errors, [str(p) for p in ruleset.errors]
    return SigmaDetector(ruleset)


def corr(kind: str, condition: str, rules: str = "    - failed_logon",
         group: str = "    - IpAddress", timespan: str = "5m") -> str:
    return (f"title: Correlated {kind}\nid: 0b1e7e0c-0000-4000-8000-0000000000c1\n"
            f"correlation:\n  type: {kind}\n  rules:\n{rules}\n  group-by:\n{group}\n"
            f"  timespan: {timespan}\n{condition}level: high\n")


def test_event_count_fires_once_per_window_per_group() -> None:
    det = detector(corr("event_count", "  condition:\n    gte: 5\n"))
    events = [logon(4625, "203.0.113.9", f"u{i}", T0 + timedelta(seconds=10 * i), i)
              for i in range(12)]
    events += [logon(4625, "198.51.100.7", "x", T0 + timedelta(seconds=i), 100 + i)
               for i in range(4)]
    alerts = det.detect(events)
    assert [a.rule_name for a in alerts] == ["Correlated event_count"] * 2
    assert all(a.fields["group.IpAddress"] == "203.0.113.9" for a in alerts)
    assert len(alerts[0].event_ids) == 5
    assert alerts[0].severity.value == "high"
    # the base rule is only used by the correlation: no alert of its own
    assert not [a for a in alerts if a.rule_name == "Failed logon"]


def test_event_count_window_slides() -> None:
    det = detector(corr("event_count", "  condition:\n    gte: 3\n", timespan="1m"))
    spread = [logon(4625, "203.0.113.9", "u", T0 + timedelta(minutes=2 * i), i)
              for i in range(6)]
    assert det.detect(spread) == []


def test_value_count_distinct_users_from_one_source() -> None:
    det = detector(corr("value_count", "  condition:\n    field: TargetUserName\n    gte: 4\n"))
    same_user = [logon(4625, "203.0.113.9", "admin", T0 + timedelta(seconds=i), i)
                 for i in range(10)]
    assert det.detect(same_user) == []
    spray = [logon(4625, "203.0.113.9", f"user{i}", T0 + timedelta(seconds=i), 50 + i)
             for i in range(4)]
    (alert,) = det.detect(spray)
    assert alert.fields["correlation.distinct_values"] == 4


def test_temporal_ordered_needs_the_order() -> None:
    rules = "    - failed_logon\n    - good_logon"
    det = detector(corr("temporal_ordered", "", rules=rules))
    wrong_order = [logon(4624, "203.0.113.9", "u", T0, 1),
                   logon(4625, "203.0.113.9", "u", T0 + timedelta(seconds=5), 2)]
    assert det.detect(wrong_order) == []
    (alert,) = det.detect([logon(4624, "203.0.113.9", "u", T0 + timedelta(seconds=9), 3)])
    assert alert.rule_name == "Correlated temporal_ordered"
    det2 = detector(corr("temporal", "", rules=rules))
    assert len(det2.detect(wrong_order)) == 1


def test_fewer_than_is_judged_when_the_window_ends() -> None:
    det = detector(corr("event_count", "  condition:\n    lt: 3\n", timespan="1m"))
    assert det.detect([logon(4625, "203.0.113.9", "u", T0, 1)]) == []
    (alert,) = det.flush()
    assert alert.fields["correlation.events"] == 1


def test_state_is_bounded(monkeypatch) -> None:
    monkeypatch.setattr(correlation, "MAX_GROUPS", 10)
    det = detector(corr("event_count", "  condition:\n    gte: 1000\n"))
    det.detect([logon(4625, f"10.0.0.{i}", "u", T0, i) for i in range(200)])
    (state,) = det.correlator.states
    assert len(state.groups) == 10
