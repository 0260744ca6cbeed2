"""``govsoc alerts list``: the alert queue from the command line."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import click

from govsoc.cli.common import emit, format_option, parse_since, pass_app


def alert_row(alert: Any) -> dict[str, Any]:
    """An alert as a JSON-ready dict with ECS-style names for its event fields."""
    row = asdict(alert)
    for key in ("first_seen", "last_seen", "created_at", "updated_at", "acknowledged_at",
                "resolved_at"):
        if row.get(key) is not None:
            row[key] = row[key].isoformat()
    row["rule"] = {"id": alert.rule_id, "name": alert.rule_name}
    return row


@click.group()
def alerts() -> None:
    """The alert queue."""


@alerts.command("list")
@click.option("--status", "statuses", multiple=True,
              type=click.Choice(["new", "acknowledged", "in_progress", "resolved",
                                 "false_positive"]))
@click.option("--severity", "severities", multiple=True,
              type=click.Choice(["informational", "low", "medium", "high", "critical"]))
@click.option("--rule", "rule_ids", multiple=True, help="Rule id (repeatable).")
@click.option("--host", "hosts", multiple=True)
@click.option("--since", default=None, help="Alerts active since: 7d, 24h or ISO time.")
@click.option("--sort", default="last_seen", show_default=True,
              type=click.Choice(["last_seen", "first_seen", "severity", "count", "created_at"]))
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100000))
@format_option()
@pass_app
def alerts_list(app, statuses, severities, rule_ids, hosts, since, sort, limit, fmt) -> None:
    """List alerts, newest first."""
    from store.base import AlertFilter, AlertStatus, Severity

    flt = AlertFilter(statuses=[AlertStatus(s) for s in statuses],
                      severities=[Severity(s) for s in severities], rule_ids=list(rule_ids),
                      hosts=list(hosts), start=parse_since(since) if since else None)
    store = app.store

    def rows():
        remaining, cursor = limit, None
        while remaining > 0:
            page = store.list_alerts(flt, sort=sort, limit=min(remaining, 1000), after=cursor)
            for alert in page.items:
                yield alert_row(alert)
            remaining -= len(page.items)
            cursor = page.next_cursor
            if not cursor:
                return

    emit(rows(), fmt, ["last_seen", "severity", "status", "count", "rule_name", "host",
                       "source_ip", "user", "id"])


COMMANDS = [alerts]
