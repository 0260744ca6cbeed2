"""SLA clocks on alerts and cases, and the response metrics MTTD, MTTA and MTTR.

Targets per severity come from ``playbooks.sla`` (minutes to acknowledge and to
resolve). Definitions, all from the stored records:

- MTTD (mean time to detect): from the first matching event (``first_seen``) to the
  alert's creation — how long detection lagged behind the activity.
- MTTA (mean time to acknowledge): alert creation to ``acknowledged_at``.
- MTTR (mean time to resolve): alert creation to ``resolved_at``; for cases,
  creation to ``closed_at``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import mean
from typing import Any

from govsoc.config import Config
from playbooks.settings import SLA_DEFAULTS, section


@dataclass(frozen=True)
class SlaTarget:
    acknowledge: timedelta
    resolve: timedelta


def sla_targets(config: Config | None = None) -> dict[str, SlaTarget]:
    values = section(config, "playbooks.sla") if config is not None else dict(SLA_DEFAULTS)
    targets = {}
    for severity, default in SLA_DEFAULTS.items():
        item = {**default, **(values.get(severity) or {})}
        targets[severity] = SlaTarget(timedelta(minutes=int(item["acknowledge_minutes"])),
                                      timedelta(minutes=int(item["resolve_minutes"])))
    return targets


@dataclass(frozen=True)
class SlaClock:
    """Where one alert or case stands against its targets at ``now``."""

    acknowledge_due: datetime | None
    resolve_due: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    acknowledge_breached: bool
    resolve_breached: bool

    @property
    def breached(self) -> bool:
        return self.acknowledge_breached or self.resolve_breached

    def remaining(self, now: datetime) -> timedelta | None:
        """Time left on the clock still running (negative when over), or None when done."""
        if self.resolved_at is not None:
            return None
        if self.acknowledged_at is None and self.acknowledge_due is not None:
            return self.acknowledge_due - now
        return self.resolve_due - now


def _severity(record: Any) -> str:
    value = getattr(record, "severity", "medium")
    return str(getattr(value, "value", value))


def alert_clock(alert: Any, targets: dict[str, SlaTarget], now: datetime) -> SlaClock:
    target = targets.get(_severity(alert), targets["medium"])
    ack_due = alert.created_at + target.acknowledge
    resolve_due = alert.created_at + target.resolve
    acked = alert.acknowledged_at or (alert.resolved_at if alert.resolved_at else None)
    ack_moment = acked or now
    resolve_moment = alert.resolved_at or now
    return SlaClock(ack_due, resolve_due, acked, alert.resolved_at,
                    ack_moment > ack_due, resolve_moment > resolve_due)


def case_clock(case: Any, targets: dict[str, SlaTarget], now: datetime) -> SlaClock:
    """Cases have a resolve clock (creation to closing); acknowledging is per alert."""
    target = targets.get(_severity(case), targets["medium"])
    resolve_due = case.created_at + target.resolve
    closed = case.closed_at
    return SlaClock(None, resolve_due, None, closed, False, (closed or now) > resolve_due)


def _mean_minutes(deltas: Iterable[timedelta]) -> float | None:
    values = [d.total_seconds() / 60 for d in deltas if d.total_seconds() >= 0]
    return round(mean(values), 1) if values else None


@dataclass(frozen=True)
class ResponseMetrics:
    mttd_minutes: float | None
    mtta_minutes: float | None
    mttr_minutes: float | None
    case_mttr_minutes: float | None
    alerts: int
    acknowledged: int
    resolved: int


def response_metrics(alerts: Iterable[Any], cases: Iterable[Any] = ()) -> ResponseMetrics:
    alerts = list(alerts)
    cases = list(cases)
    acked = [a for a in alerts if a.acknowledged_at is not None]
    resolved = [a for a in alerts if a.resolved_at is not None]
    return ResponseMetrics(
        mttd_minutes=_mean_minutes(a.created_at - a.first_seen for a in alerts),
        mtta_minutes=_mean_minutes(a.acknowledged_at - a.created_at for a in acked),
        mttr_minutes=_mean_minutes(a.resolved_at - a.created_at for a in resolved),
        case_mttr_minutes=_mean_minutes(c.closed_at - c.created_at for c in cases
                                        if c.closed_at is not None),
        alerts=len(alerts), acknowledged=len(acked), resolved=len(resolved))
