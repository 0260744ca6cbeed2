"""``govsoc scan`` (files and trees on demand) and ``govsoc yara rules|watch``."""

from __future__ import annotations

import signal
import time
from datetime import timedelta
from typing import Any

import click

from govsoc.cli.common import emit, format_option, pass_app

_RULES_HELP = "Rule directory or file (repeatable), added to detection.yara_rules."
_TABLE = ["file.path", "severity", "rule.name", "file.size", "file.hash.sha256"]


def _scanner(app: Any, rules: tuple[str, ...], no_default: bool, **overrides: Any) -> Any:
    from detection.yara.settings import open_scanner

    scanner = open_scanner(app.config, list(rules), not no_default, **overrides)
    report = scanner.compiled.report
    click.echo(f"rules: {report.summary()}", err=True)
    for skipped in report.skipped:
        click.echo(f"  rule file left out: {skipped}", err=True)
    return scanner


def _row(result: Any) -> dict[str, Any]:
    from detection.yara.alerts import match_event, most_severe, rule_severity

    if result.skipped and not result.matches:
        return {"file": {"path": result.path},
                "event": {"kind": "event", "dataset": "yara.scan", "outcome": "failure",
                          "reason": result.skipped + (f" ({result.detail})"
                                                      if result.detail else "")},
                "severity": "", "rule": {"name": [f"({result.skipped})"]}}
    row = match_event(result)
    row["severity"] = rule_severity(most_severe(result.matches).meta).value
    if result.skipped:
        row["event"]["reason"] = result.skipped
    return row


def _record(app: Any, events: list[Any], alerts: list[Any]) -> tuple[int, int]:
    if not events:
        return 0, 0
    from detection.yara.alerts import unsuppressed

    store = app.store
    store.insert_events(events)
    alerts = unsuppressed(alerts, store.list_suppressions())
    window = timedelta(seconds=int(app.config.get("detection.alert_window_seconds", 3600)))
    stored = store.record_alerts(alerts, window) if alerts else []
    created = sum(1 for _, new in stored if new)
    return created, len(stored) - created


@click.command("scan")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--rules", "rules", multiple=True, type=click.Path(exists=True),
              help=_RULES_HELP)
@click.option("--no-default-rules", is_flag=True,
              help="Use only --rules, not detection.yara_rules.")
@click.option("--exclude", multiple=True, help="Glob of paths/names not to scan (repeatable).")
@click.option("--max-size", "max_mb", type=click.FloatRange(min=0, min_open=True),
              help="Size cap in MB (default detection.yara.max_file_mb).")
@click.option("--timeout", type=click.IntRange(min=1), help="Seconds per file.")
@click.option("--threads", type=click.IntRange(min=1, max=64), help="Scanning threads.")
@click.option("--no-archives", is_flag=True, help="Do not open zip/tar archives.")
@click.option("--record", is_flag=True, help="Store match events and alerts.")
@click.option("--show-skipped", is_flag=True, help="Also list files not scanned, with why.")
@format_option(("table", "jsonl"))
@pass_app
def scan(app: Any, paths: tuple[str, ...], rules: tuple[str, ...], no_default_rules: bool,
         exclude: tuple[str, ...], max_mb: float | None, timeout: int | None,
         threads: int | None, no_archives: bool, record: bool, show_skipped: bool,
         fmt: str) -> int:
    """Scan files and directory trees with YARA rules.

    Exit status, as virus scanners give it: 0 when nothing matched, 1 when some
    file matched, 2 on a usage error."""
    from detection.yara.alerts import alerts_for
    from detection.yara.scanner import ScanStats

    overrides: dict[str, Any] = {"timeout": timeout, "threads": threads,
                                 "max_file_size": int(max_mb * 1024 * 1024) if max_mb else None}
    scanner = _scanner(app, rules, no_default_rules, **overrides)
    if no_archives:
        from dataclasses import replace

        scanner.limits = replace(scanner.limits, archives=None)
    if exclude:
        from dataclasses import replace

        scanner.limits = replace(scanner.limits,
                                 exclude=scanner.limits.exclude + tuple(exclude))
    stats = ScanStats()
    matched: list[Any] = []
    started = time.monotonic()

    def rows() -> Any:
        for result in scanner.scan(list(paths), stats):
            if result.matches:
                matched.append(result)
                yield _row(result)
            elif show_skipped:
                yield _row(result)

    emit(rows(), fmt, _TABLE, ["path", "severity", "rules", "size", "sha256"])
    elapsed = time.monotonic() - started
    click.echo(f"{stats.summary()} in {elapsed:.1f}s "
               f"({stats.bytes_scanned / 1e6 / max(elapsed, 1e-6):,.1f} MB/s)", err=True)
    if record:
        events, alerts = alerts_for(matched)
        created, folded = _record(app, events, alerts)
        click.echo(f"alerts: {created} new, {folded} folded into existing ones", err=True)
    return 1 if matched else 0


@click.group("yara")
def yara_group() -> None:
    """YARA rule sets and watched directories."""


@yara_group.command("rules")
@click.option("--rules", "rules", multiple=True, type=click.Path(exists=True),
              help=_RULES_HELP)
@click.option("--no-default-rules", is_flag=True)
@format_option(("table", "jsonl"))
@pass_app
def yara_rules(app: Any, rules: tuple[str, ...], no_default_rules: bool, fmt: str) -> None:
    """Compile the rule set and list the rule files left out, with file, line and reason."""
    from detection.yara.settings import compile_configured

    compiled = compile_configured(app.config, list(rules), not no_default_rules)
    report = compiled.report
    click.echo(report.summary(), err=True)
    rows = [{"file": {"path": s.path}, "line": s.line, "reason": s.reason}
            for s in report.skipped]
    emit(rows, fmt, ["file.path", "line", "reason"])


@yara_group.command("watch")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, file_okay=False))
@click.option("--rules", "rules", multiple=True, type=click.Path(exists=True),
              help=_RULES_HELP)
@click.option("--no-default-rules", is_flag=True)
@click.option("--poll", is_flag=True, help="Poll instead of using inotify.")
@click.option("--record/--no-record", default=True, show_default=True,
              help="Store match events and alerts.")
@click.option("--initial-scan", is_flag=True, help="Scan what is already there first.")
@pass_app
def yara_watch(app: Any, paths: tuple[str, ...], rules: tuple[str, ...],
               no_default_rules: bool, poll: bool, record: bool, initial_scan: bool) -> None:
    """Watch web roots and upload folders; scan each new or changed file."""
    from detection.yara.alerts import alerts_for
    from detection.yara.watch import WatchSettings, YaraWatch
    from govsoc.errors import ConfigError

    section = app.config.section("detection.yara").get("watch", {}) or {}
    targets = list(paths) or list(section.get("paths", []))
    if not targets:
        raise ConfigError("detection.yara.watch.paths", "no directory to watch given")
    scanner = _scanner(app, rules, no_default_rules)
    settings = WatchSettings(
        poll_seconds=float(section.get("poll_seconds", 5)),
        settle_seconds=float(section.get("settle_seconds", 0.5)),
        inotify=bool(section.get("inotify", True)) and not poll,
        initial_scan=initial_scan)

    def on_result(result: Any) -> None:
        if result.matches:
            row = _row(result)
            click.echo(f"{row['severity']:<8} {result.path}  "
                       f"{', '.join(m.rule for m in result.matches)}")
            if record:
                events, alerts = alerts_for([result])
                _record(app, events, alerts)
        elif result.skipped:
            click.echo(f"not scanned: {result.path}: {result.skipped}", err=True)

    watch = YaraWatch(scanner, targets, on_result, settings)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: watch.stop())
    click.echo(f"watching {', '.join(targets)} ({watch.mode})", err=True)
    watch.run()


COMMANDS = [scan, yara_group]
