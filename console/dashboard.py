"""The dashboard: alerts over time, by severity and status, top rules, hosts and
sources, open cases, and time to acknowledge and to resolve.

The page is rendered with the figures and carries the same data in a JSON data
block (not script) that ``static/js/dashboard.js`` draws with the vendored Chart.js;
``/dashboard/data.json`` serves it for refreshes.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flask import Blueprint, current_app, jsonify, render_template, request, url_for
from flask_babel import gettext as _

from console.alerts import severity_label, status_label
from console.app import get_store
from console.i18n import show_time
from console.permissions import Permission, requires
from govsoc.events import utcnow
from store.base import (
    OPEN_ALERT_STATUSES,
    AlertFilter,
    AlertStatus,
    CaseFilter,
    CaseStatus,
    Severity,
)

bp = Blueprint("dashboard", __name__)

#: range name -> (length, histogram bucket)
RANGES: dict[str, tuple[timedelta, timedelta]] = {
    "24h": (timedelta(hours=24), timedelta(hours=1)),
    "7d": (timedelta(days=7), timedelta(hours=6)),
    "30d": (timedelta(days=30), timedelta(days=1)),
}
TOP = 10
#: resolved alerts sampled for the time-to-acknowledge/resolve figures
RESPONSE_SAMPLE = 500
#: how long the store figures of a range are reused (``DASHBOARD_CACHE_SECONDS``)
CACHE_SECONDS = 30.0


def _top(counts: dict[str, int], size: int = TOP) -> list[tuple[str, int]]:
    items = [(k, v) for k, v in counts.items() if k not in (None, "")]
    items.sort(key=lambda kv: (-kv[1], str(kv[0])))
    return items[:size]


def _minutes(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"median": None, "mean": None, "n": 0}
    return {"median": round(statistics.median(values), 1),
            "mean": round(statistics.fmean(values), 1), "n": len(values)}


def response_times(flt: AlertFilter) -> dict[str, Any]:
    """Time to acknowledge and to resolve, in minutes, over recently closed alerts.

    The contract has no aggregation for these, so the figures come from the most
    recent closed alerts (at most ``RESPONSE_SAMPLE``).
    """
    store = get_store()
    closed = store.list_alerts(
        AlertFilter(statuses=[AlertStatus.RESOLVED, AlertStatus.FALSE_POSITIVE],
                    start=flt.start), sort="last_seen", limit=RESPONSE_SAMPLE)
    ack: list[float] = []
    resolve: list[float] = []
    for alert in closed.items:
        if alert.acknowledged_at:
            ack.append((alert.acknowledged_at - alert.created_at).total_seconds() / 60)
        if alert.resolved_at:
            resolve.append((alert.resolved_at - alert.created_at).total_seconds() / 60)
    return {"acknowledge": _minutes(ack), "resolve": _minutes(resolve)}


class FigureCache:
    """Store figures per range, kept for ``ttl`` seconds.

    Grouped counts over a month of alerts cost the store hundreds of milliseconds;
    a dashboard refreshed by many people at once would repeat them for nothing.
    One request computes a range's figures while the others wait for them.
    """

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and time.monotonic() - entry[0] < self.ttl:
                return entry[1]
            value = compute()
            self._entries[key] = (time.monotonic(), value)
            return value


def _cache() -> FigureCache:
    ttl = float(current_app.config.get("DASHBOARD_CACHE_SECONDS", CACHE_SECONDS))
    found: FigureCache = current_app.extensions.setdefault("govsoc.dashboard_cache",
                                                           FigureCache(ttl))
    return found


def store_figures(range_name: str) -> dict[str, Any]:
    """What the dashboard shows, straight from the store (no presentation)."""
    store = get_store()
    length, bucket = RANGES[range_name]
    flt = AlertFilter(start=utcnow() - length)
    top_rules = _top(store.count_alerts(flt, by="rule_id"))
    rule_names: dict[str, str] = {}
    for rule_id, _count in top_rules:
        sample = store.list_alerts(AlertFilter(rule_ids=[rule_id]), limit=1).items
        rule_names[rule_id] = sample[0].rule_name if sample else rule_id
    return {
        "by_status": store.count_alerts(flt, by="status"),
        "by_severity": store.count_alerts(flt, by="severity"),
        "top_rules": top_rules, "rule_names": rule_names,
        "top_hosts": _top(store.count_alerts(flt, by="host")),
        "by_source": _top(store.count_alerts(flt, by="source")),
        "histogram": store.alert_histogram(flt, bucket),
        "open_cases": store.list_cases(
            CaseFilter(statuses=[CaseStatus.OPEN, CaseStatus.IN_PROGRESS]), limit=10),
        "response_minutes": response_times(flt),
        "sla_breaches": _sla_breaches(),
        "computed_at": utcnow(),
    }


#: How many of the newest open alerts the SLA tile looks at.
SLA_SAMPLE = 1000


def _sla_breaches() -> dict[str, Any]:
    """Open alerts past their time to acknowledge or to resolve (the newest
    :data:`SLA_SAMPLE` open alerts; ``complete`` says whether that was all of them)."""
    from console.reports import sla_clock

    page = get_store().list_alerts(AlertFilter(statuses=list(OPEN_ALERT_STATUSES)),
                                   sort="created_at", limit=SLA_SAMPLE)
    breached = sum(1 for alert in page.items if sla_clock(alert).breached)
    return {"count": breached, "complete": page.next_cursor is None}


def dashboard_data(range_name: str) -> dict[str, Any]:
    figures = _cache().get(range_name, lambda: store_figures(range_name))
    by_status, by_severity = figures["by_status"], figures["by_severity"]
    open_cases = figures["open_cases"]
    return {
        "range": range_name,
        "computed_at": figures["computed_at"].isoformat(),
        "total": sum(by_status.values()),
        "open_alerts": sum(v for k, v in by_status.items() if AlertStatus(k).is_open),
        "by_status": {s.value: by_status.get(s.value, 0) for s in AlertStatus},
        "by_severity": {s.value: by_severity.get(s.value, 0) for s in Severity},
        "top_rules": [{"rule_id": r, "name": figures["rule_names"][r], "count": c}
                      for r, c in figures["top_rules"]],
        "top_hosts": [{"host": h, "count": c} for h, c in figures["top_hosts"]],
        "by_source": [{"source": src, "count": c} for src, c in figures["by_source"]],
        "histogram": [{"start": b.start.isoformat(), "label": show_time(b.start, "MM-dd HH:mm"),
                       "count": b.count} for b in figures["histogram"]],
        "open_cases": {"total": open_cases.total, "items": [
            {"id": c.id, "title": c.title, "severity": str(c.severity),
             "status": str(c.status), "url": url_for("cases.detail", case_id=c.id)}
            for c in open_cases.items]},
        "response_minutes": figures["response_minutes"],
        "sla_breaches": figures["sla_breaches"],
        "labels": {
            "alerts": _("Alerts"),
            "status": {s.value: status_label(s.value) for s in AlertStatus},
            "severity": {s.value: severity_label(s.value) for s in Severity},
        },
    }


def _range() -> str:
    value = request.args.get("range", "7d")
    return value if value in RANGES else "7d"


@bp.route("/")
@requires(Permission.DASHBOARD_VIEW)
def index() -> Any:
    range_name = _range()
    return render_template("dashboard.html", data=dashboard_data(range_name),
                           ranges=list(RANGES), range_name=range_name)


@bp.route("/dashboard/data.json")
@requires(Permission.DASHBOARD_VIEW)
def data() -> Any:
    return jsonify(dashboard_data(_range()))
