"""Sigma on the command line: ``govsoc rules check|list|show|test``, ``govsoc hunt``,
``govsoc detect [--follow]``."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from govsoc.cli.common import emit, fail, format_option, parse_since, pass_app
from govsoc.errors import GovsocError

DETECT_CHECKPOINT = "sigma-detect"


def _rule_paths(app: Any, paths: tuple[str, ...]) -> list[str]:
    if paths:
        return list(paths)
    return list(app.config.get("detection.sigma_rules", ["builtin"]) or ["builtin"])


def _cache(app: Any) -> str:
    return str(app.config.data_path("cache/sigma"))


def _load(app: Any, paths: list[str], validate: bool = False) -> Any:
    from detection.sigma.ruleset import load_ruleset

    ruleset = load_ruleset(paths, cache_dir=None if validate else _cache(app), validate=validate)
    for problem in ruleset.errors:
        fail(str(problem))
    return ruleset


@click.group("rules")
def rules() -> None:
    """Sigma rules: check, list, show, test."""


@rules.command("check")
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--warnings/--no-warnings", default=True, show_default=True,
              help="Also print pySigma validator warnings.")
@pass_app
def rules_check(app: Any, paths: tuple[str, ...], warnings: bool) -> None:
    """Load, validate and compile rules; every problem with its file and line."""
    from detection.sigma.ruleset import load_ruleset

    ruleset = load_ruleset(_rule_paths(app, paths), validate=True)
    for problem in ruleset.problems:
        if problem.severity == "error" or warnings:
            click.echo(str(problem), err=problem.severity == "error")
    errors = len(ruleset.errors)
    click.echo(f"{ruleset.files} files, {len(ruleset.rules)} rules compiled, "
               f"{len(ruleset.correlations)} correlation rules, {errors} errors, "
               f"{len(ruleset.problems) - errors} warnings")
    if errors:
        sys.exit(1)


def _rule_row(rule: Any) -> dict[str, Any]:
    from detection.sigma.routing import route_for

    return {"rule": {"id": rule.rule_id, "name": rule.title, "level": rule.level},
            "id": rule.rule_id, "title": rule.title, "level": rule.level,
            "logsource": "/".join(x for x in (rule.product, rule.category, rule.service) if x),
            "route": route_for(rule.product, rule.category, rule.service,
                               rule.event_ids).describe(),
            "tags": rule.tags, "path": rule.path}


@rules.command("list")
@click.argument("paths", nargs=-1, type=click.Path())
@format_option()
@pass_app
def rules_list(app: Any, paths: tuple[str, ...], fmt: str) -> None:
    """List the compiled rules with their logsource and route."""
    ruleset = _load(app, _rule_paths(app, paths))
    emit((_rule_row(r) for r in ruleset.rules), fmt,
         ["id", "level", "logsource", "title"], ["id", "level", "logsource", "title"])


@rules.command("show")
@click.argument("rule")
@click.option("--rules", "paths", multiple=True, type=click.Path(),
              help="Where to look (default: the configured rule directories).")
@pass_app
def rules_show(app: Any, rule: str, paths: tuple[str, ...]) -> None:
    """One rule: metadata, route, prefilter literals and the compiled matcher."""
    ruleset = _load(app, _rule_paths(app, paths))
    found = [r for r in ruleset.rules if rule in (r.rule_id, r.title, r.name)
             or Path(r.path).name == rule]
    if not found:
        raise GovsocError(f"no rule {rule!r} among {len(ruleset.rules)} loaded rules")
    for r in found:
        row = _rule_row(r)
        for key in ("id", "title", "level", "logsource", "route", "path"):
            click.echo(f"{key:10} {row[key]}")
        click.echo(f"{'tags':10} {', '.join(r.tags)}")
        click.echo(f"{'fields':10} {', '.join(r.fields)}")
        click.echo(f"{'literals':10} {r.literals if r.literals else '(none: always evaluated)'}")
        for warning in r.warnings:
            click.echo(f"{'warning':10} {warning}")
        click.echo("matcher:")
        click.echo(r.source)


@rules.command("test")
@click.argument("rule", type=click.Path(exists=True))
@click.option("--events", "event_files", multiple=True, required=True, type=click.Path(),
              help="EVTX, JSON lines or log file (repeatable).")
@click.option("--kind", default=None, help="Log format of text files (auth, syslog, iis...).")
@format_option()
@pass_app
def rules_test(app: Any, rule: str, event_files: tuple[str, ...], kind: str | None,
               fmt: str) -> None:
    """Run one rule file over events: did it fire, and on what."""
    from detection.sigma.engine import SigmaDetector
    from detection.sigma.hunt import hunt_files
    from detection.sigma.ruleset import load_ruleset

    ruleset = load_ruleset([rule])
    for problem in ruleset.problems:
        click.echo(str(problem), err=True)
    if not ruleset.rules:
        raise GovsocError(f"{rule}: no rule could be compiled")
    detector = SigmaDetector(ruleset)
    detections = [d.as_row() for d in hunt_files(detector, event_files, kind=kind)]
    emit(detections, fmt, ["@timestamp", "rule.name", "event.id", "log.file.path"],
         ["time", "rule", "event", "file"])
    if fmt == "table":
        click.echo(f"{len(detections)} matching events", err=True)
    if not detections:
        sys.exit(1)


HUNT_COLUMNS = ["@timestamp", "rule.level", "rule.name", "event.event.dataset",
                "event.host.name", "log.file.path"]


@click.command("hunt")
@click.option("--rules", "rule_paths", multiple=True, type=click.Path(),
              help="Rule files or directories (default: the configured ones).")
@click.option("--since", default=None, help="Only events since: 7d, 24h or ISO time.")
@click.option("--until", default=None, help="Only events before this time.")
@click.option("--kind", default=None, help="Log format of text files (auth, syslog, iis...).")
@click.argument("files", nargs=-1, type=click.Path())
@format_option()
@pass_app
def hunt(app: Any, rule_paths: tuple[str, ...], since: str | None, until: str | None,
         kind: str | None, files: tuple[str, ...], fmt: str) -> None:
    """Run Sigma rules over history: FILES directly (EVTX, JSON, logs; no store
    needed), or the store when no file is given."""
    from detection.sigma.engine import SigmaDetector
    from detection.sigma.hunt import hunt_files, hunt_store

    paths = list(rule_paths) or _rule_paths(app, ())
    ruleset = _load(app, paths)
    detector = SigmaDetector(ruleset, correlate=False)
    start = parse_since(since) if since else None
    end = parse_since(until) if until else None
    started = time.monotonic()
    rejected: list[Any] = []
    levels: Counter[str] = Counter()
    if files:
        found = hunt_files(detector, files, kind=kind, since=start, rejected=rejected)
    else:
        found = hunt_store(detector, app.store, since=start, until=end)

    def rows() -> Iterator[dict[str, Any]]:
        for detection in found:
            levels[detection.level] += 1
            yield detection.as_row()

    count = emit(rows(), fmt, HUNT_COLUMNS, ["time", "level", "rule", "dataset", "host", "file"])
    summary = ", ".join(f"{k} {v}" for k, v in levels.most_common())
    click.echo(f"{count} detections ({summary or 'none'}) from {len(ruleset.rules)} rules in "
               f"{time.monotonic() - started:.1f}s"
               + (f"; {len(rejected)} unreadable records" if rejected else ""), err=True)


@click.command("detect")
@click.option("--follow", is_flag=True, help="Keep following new events in the store.")
@click.option("--from-start", is_flag=True, help="Ignore the checkpoint; start at the oldest.")
@click.option("--interval", default=2.0, show_default=True, type=click.FloatRange(0.1, 3600))
@pass_app
def detect(app: Any, follow: bool, from_start: bool, interval: float) -> None:
    """Run Sigma detection over events stored since the last run (the store's tail)."""
    from datetime import timedelta

    from detection.sigma.engine import build_sigma_detector
    from govsoc.pipeline import custom_sigma_texts, disabled_rule_ids

    store = app.store
    detector = build_sigma_detector(app.config, custom_sigma_texts(store))

    def refresh_rule_state() -> None:
        # what the console changed: suppressions and the rules switched off
        detector.set_suppressions(store.list_suppressions())
        detector.set_disabled_rules(disabled_rule_ids(store))

    refresh_rule_state()
    window = timedelta(seconds=int(app.config.get("detection.alert_window_seconds", 3600)))
    state = None if from_start else store.get_checkpoint(DETECT_CHECKPOINT)
    cursor = state.get("cursor") if state else None
    seen = created = 0
    try:
        while True:
            events, cursor = store.tail_events(cursor, 2000)
            if events:
                stored = store.record_alerts(detector.detect(events), window)
                created += sum(1 for _, new in stored if new)
                seen += len(events)
                store.set_checkpoint(DETECT_CHECKPOINT, {"cursor": cursor})
                continue
            if not follow:
                break
            refresh_rule_state()
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
    stored = store.record_alerts(detector.flush(), window)
    created += sum(1 for _, new in stored if new)
    click.echo(f"{seen} events examined, {created} new alerts", err=True)


COMMANDS = [rules, hunt, detect]
