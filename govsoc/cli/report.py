"""``govsoc report``: the managers' summary and the national incident report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import yaml

from govsoc.cli.common import pass_app

_PERIODS = {"day": timedelta(days=1), "week": timedelta(days=7), "month": timedelta(days=30)}


def _moment(text: str) -> datetime:
    from govsoc.events import parse_timestamp

    text = text.strip()
    try:
        if len(text) == 10:  # a date: midnight in Vietnam, where the reports are read
            from zoneinfo import ZoneInfo

            day = datetime.strptime(text, "%Y-%m-%d")
            return day.replace(tzinfo=ZoneInfo("Asia/Ho_Chi_Minh")).astimezone(UTC)
        return parse_timestamp(text)
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a date (2026-01-31) or an ISO 8601 time") \
            from None


def _output(path: str | None, default_name: str, fmt: str) -> Path:
    return Path(path) if path else Path(f"{default_name}.{fmt}")


@click.group("report")
def report_group() -> None:
    """Reports: the periodic summary and the national incident report."""


@report_group.command("summary")
@click.option("--from", "start", default=None, help="Start: a date (2026-01-01) or ISO time.")
@click.option("--to", "end", default=None, help="End (exclusive); default now.")
@click.option("--period", type=click.Choice(list(_PERIODS)), default=None,
              help="The last day, week or month up to --to (instead of --from).")
@click.option("--format", "fmt", type=click.Choice(["html", "pdf"]), default="html",
              show_default=True)
@click.option("--lang", type=click.Choice(["vi", "en"]), default=None,
              help="Language (default reports.language).")
@click.option("-o", "--output", default=None, type=click.Path(dir_okay=False))
@pass_app
def summary(app: Any, start: str | None, end: str | None, period: str | None, fmt: str,
            lang: str | None, output: str | None) -> None:
    """Alerts, rules, cases, SLA breaches and response times over a period."""
    import playbooks.settings  # noqa: F401
    from playbooks.reports.summary import build_summary, write_summary

    until = _moment(end) if end else datetime.now(UTC)
    since = _moment(start) if start else until - _PERIODS[period or "week"]
    language = lang or app.config.get("reports.language") or "vi"
    report = build_summary(app.store, app.config, since, until, language)
    target = _output(output, f"govsoc-summary-{since:%Y%m%d}-{until:%Y%m%d}", fmt)
    write_summary(report, target, fmt, app.config)
    click.echo(f"wrote {target} ({report.alert_count} alerts, "
               f"{len(report.cases_opened)} cases opened)")


@report_group.command("incident")
@click.argument("case_id")
@click.option("--kind", type=click.Choice(["notification", "initial", "final"]),
              required=True)
@click.option("--format", "fmt", type=click.Choice(["html", "pdf"]), default="pdf",
              show_default=True)
@click.option("-o", "--output", default=None, type=click.Path(dir_okay=False))
@click.option("--set", "assignments", multiple=True, metavar="FIELD=VALUE",
              help="Edit a field before export (kept on the case; repeatable).")
@click.option("--fields", "fields_file", default=None, type=click.Path(exists=True),
              help="YAML file of field: value edits (kept on the case).")
@click.option("--dump-fields", is_flag=True,
              help="Print the pre-filled fields as YAML (to edit and pass to --fields).")
@click.option("--as", "actor", default="govsoc", show_default=True,
              help="Who edits (for the audit log).")
@pass_app
def incident(app: Any, case_id: str, kind: str, fmt: str, output: str | None,
             assignments: tuple[str, ...], fields_file: str | None, dump_fields: bool,
             actor: str) -> None:
    """The national incident report of a case (Decision 05/2017/QĐ-TTg, Circular
    20/2017/TT-BTTTT): notification, initial or final report."""
    import playbooks.settings  # noqa: F401
    from playbooks.reports.incident import (
        EDITABLE,
        build_incident_report,
        record_export,
        save_incident_draft,
        write_incident_report,
    )

    changes: dict[str, Any] = {}
    if fields_file:
        loaded = yaml.safe_load(Path(fields_file).read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise click.BadParameter(f"{fields_file}: expected a mapping of field: value")
        changes.update(loaded)
    for item in assignments:
        name, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r}: expected FIELD=VALUE")
        changes[name.strip()] = value
    if changes:
        save_incident_draft(app.store, case_id, kind, changes, actor)
    report = build_incident_report(app.store, app.config, case_id, kind)
    if dump_fields:
        editable = {k: report.fields.get(k) for k in EDITABLE}
        click.echo(yaml.safe_dump(editable, allow_unicode=True, sort_keys=False))
        return
    target = _output(output, f"govsoc-incident-{case_id}-{kind}", fmt)
    write_incident_report(report, target, fmt, app.config)
    record_export(app.store, case_id, kind, fmt, actor)
    edited = f", edited: {', '.join(report.edited)}" if report.edited else ""
    click.echo(f"wrote {target}{edited}")


@report_group.command("metrics")
@click.option("--from", "start", default=None)
@click.option("--to", "end", default=None)
@pass_app
def metrics(app: Any, start: str | None, end: str | None) -> None:
    """MTTD, MTTA, MTTR and SLA breaches over a period (default: the last 30 days)."""
    import playbooks.settings  # noqa: F401
    from playbooks.reports.summary import build_summary

    until = _moment(end) if end else datetime.now(UTC)
    since = _moment(start) if start else until - timedelta(days=30)
    report = build_summary(app.store, app.config, since, until, "en")
    m = report.metrics

    def show(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f} min"

    click.echo(f"alerts {m.alerts}  acknowledged {m.acknowledged}  resolved {m.resolved}")
    click.echo(f"MTTD {show(m.mttd_minutes)}  MTTA {show(m.mtta_minutes)}  "
               f"MTTR {show(m.mttr_minutes)}  case MTTR {show(m.case_mttr_minutes)}")
    click.echo(f"SLA breaches: acknowledge {sum(report.ack_breaches.values())}, "
               f"resolve {sum(report.resolve_breaches.values())}, "
               f"cases {report.case_breaches}")


COMMANDS = [report_group]
