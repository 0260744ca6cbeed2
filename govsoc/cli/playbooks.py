"""``govsoc playbooks``: check, list and show playbooks; start runs and work their steps."""

from __future__ import annotations

import getpass
import json
from typing import Any

import click

import playbooks.settings  # noqa: F401 - registers the playbooks/reports config sections
from govsoc.cli.common import emit, fail, format_option, pass_app


def _library(app: Any, paths: tuple[str, ...] = ()) -> Any:
    from playbooks.loader import load_library

    dirs = list(paths) or list(app.config.get("playbooks.dirs") or ["builtin"])
    return load_library(dirs)


def _engine(app: Any) -> Any:
    from playbooks.engine import PlaybookEngine

    library = _library(app)
    for error in library.errors:
        fail(str(error))
    return PlaybookEngine(app.store, app.config, library)


def _default_actor() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "govsoc"


actor_option = click.option("--as", "actor", default=_default_actor, show_default="login name",
                            help="Who acts (a govsoc user; approvals check its role).")


@click.group("playbooks")
def playbooks_group() -> None:
    """Response playbooks: check, list, show, run."""


@playbooks_group.command("check")
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@pass_app
def check(app: Any, paths: tuple[str, ...]) -> None:
    """Validate playbooks (the configured ones, or PATHS); exit 1 on any error."""
    library = _library(app, paths)
    for playbook in library:
        click.echo(f"ok     {playbook.path}  ({playbook.id} v{playbook.version}, "
                   f"{len(playbook.steps)} steps)")
    for error in library.errors:
        click.echo(f"error  {error}")
    click.echo(f"{len(library)} valid, {len(library.errors)} invalid")
    if library.errors:
        raise click.exceptions.Exit(1)


@playbooks_group.command("list")
@click.option("--lang", type=click.Choice(["vi", "en"]), default="vi", show_default=True)
@format_option(("table", "jsonl"))
@pass_app
def list_playbooks(app: Any, lang: str, fmt: str) -> None:
    """The playbooks that load, with their triggers."""
    rows = []
    for playbook in _library(app):
        triggers = []
        for trigger in playbook.triggers:
            parts = list(trigger.techniques) + list(trigger.rule_ids) + \
                [f"tag:{t}" for t in trigger.tags] + [f"~{n}" for n in trigger.rule_name_contains] \
                + [f"dataset:{d}" for d in trigger.datasets]
            triggers.append(("auto " if trigger.auto_run else "") + " ".join(parts))
        rows.append({"id": playbook.id, "version": playbook.version,
                     "name": playbook.name.get(lang), "severity": playbook.severity,
                     "steps": len(playbook.steps), "phases": playbook.phases,
                     "triggers": triggers, "path": playbook.path})
    emit(rows, fmt, ["id", "version", "severity", "steps", "name"])


@playbooks_group.command("show")
@click.argument("playbook_id")
@click.option("--lang", type=click.Choice(["vi", "en"]), default="vi", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@pass_app
def show(app: Any, playbook_id: str, lang: str, fmt: str) -> None:
    """A playbook's phases and steps."""
    from playbooks.actions import ACTIONS
    from playbooks.model import PHASE_TITLES

    playbook = _library(app).get(playbook_id)
    if fmt == "json":
        click.echo(json.dumps(playbook.document, ensure_ascii=False, indent=2))
        return
    click.echo(f"{playbook.name.get(lang)}  [{playbook.id} v{playbook.version}]")
    if playbook.description:
        click.echo(playbook.description.get(lang))
    for phase in playbook.phases:
        click.echo(f"\n{PHASE_TITLES[phase][lang]}")
        for step in (s for s in playbook.steps if s.phase == phase):
            if step.type == "task":
                kind = f"task ({step.owner_role or 'analyst'})"
            else:
                action = ACTIONS.get(step.action or "")
                gate = " needs approval" if (action and action.destructive) or step.approval \
                    else ""
                kind = f"action {step.action}{gate}"
            when = f"  if {step.when}" if step.when else ""
            click.echo(f"  - {step.id}: {step.title.get(lang)}  [{kind}]{when}")


@playbooks_group.command("actions")
@format_option(("table", "jsonl"))
def list_actions(fmt: str) -> None:
    """The actions a step can run."""
    from playbooks.actions import ACTIONS

    emit([{"name": a.name, "destructive": a.destructive, "description": a.description}
          for a in ACTIONS.values()], fmt, ["name", "destructive", "description"])


def _run_rows(run: Any, lang: str = "vi") -> list[dict[str, Any]]:
    from playbooks.engine import parse_playbook_document

    playbook = parse_playbook_document(run.playbook, run.playbook_id)
    rows = []
    for step in playbook.steps:
        record = run.steps[step.id]
        rows.append({"step": step.id, "phase": step.phase, "type": step.type,
                     "status": record.status, "title": step.title.get(lang),
                     "attempts": record.attempts, "error": record.error,
                     "inputs": record.inputs, "output": record.output,
                     "approval": record.approval, "task": record.task})
    return rows


def _print_run(run: Any, fmt: str = "table") -> None:
    if fmt == "jsonl":
        click.echo(json.dumps(run.to_json(), ensure_ascii=False, default=str))
        return
    summary = run.summary()
    click.echo(f"run {run.id}  {run.playbook_id}  {run.status}"
               f"{' (dry run)' if run.dry_run else ''}  case {run.case_id or '-'}  "
               f"progress {summary['progress']}")
    if run.reason:
        click.echo(f"reason: {run.reason}")
    emit(_run_rows(run, run.language), "table", ["step", "phase", "type", "status", "error"])


@playbooks_group.command("run")
@click.argument("playbook_id")
@click.option("--case", "case_id", default=None, help="Case to run it on.")
@click.option("--alert", "alert_id", default=None, help="Alert to run it on (opens a case).")
@click.option("--dry-run", is_flag=True, help="Show what each step would do; change nothing.")
@click.option("--lang", type=click.Choice(["vi", "en"]), default="vi", show_default=True)
@actor_option
@format_option(("table", "jsonl"))
@pass_app
def run_playbook(app: Any, playbook_id: str, case_id: str | None, alert_id: str | None,
                 dry_run: bool, lang: str, actor: str, fmt: str) -> None:
    """Start a playbook on a case or an alert; it runs until it waits for people."""
    if not case_id and not alert_id:
        raise click.UsageError("give --case or --alert")
    run = _engine(app).start(playbook_id, actor=actor, case_id=case_id, alert_id=alert_id,
                             dry_run=dry_run, language=lang)
    _print_run(run, fmt)


@playbooks_group.command("suggest")
@click.option("--case", "case_id", default=None)
@click.option("--alert", "alert_id", default=None)
@click.option("--lang", type=click.Choice(["vi", "en"]), default="vi", show_default=True)
@pass_app
def suggest(app: Any, case_id: str | None, alert_id: str | None, lang: str) -> None:
    """Playbooks whose triggers fit a case or an alert."""
    if not case_id and not alert_id:
        raise click.UsageError("give --case or --alert")
    for playbook in _engine(app).suggest(case_id=case_id, alert_id=alert_id):
        click.echo(f"{playbook.id}\t{playbook.name.get(lang)}")


@playbooks_group.command("runs")
@click.option("--status", "statuses", multiple=True,
              type=click.Choice(["running", "waiting", "paused", "completed", "failed",
                                 "cancelled"]))
@click.option("--case", "case_id", default=None)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100000))
@format_option(("table", "jsonl"))
@pass_app
def list_runs(app: Any, statuses: tuple[str, ...], case_id: str | None, limit: int,
              fmt: str) -> None:
    """Playbook runs, newest first."""
    from playbooks.runs import RunRepository

    runs = RunRepository(app.store).list(tuple(statuses), case_id=case_id, limit=limit)
    emit([r.summary() for r in runs], fmt,
         ["id", "playbook_id", "status", "progress", "case_id", "dry_run", "created_at"])


@playbooks_group.command("status")
@click.argument("run_id")
@format_option(("table", "jsonl"))
@pass_app
def run_status(app: Any, run_id: str, fmt: str) -> None:
    """A run's steps: status, errors; ``--format jsonl`` adds inputs and outputs."""
    from playbooks.runs import RunRepository

    _print_run(RunRepository(app.store).get(run_id), fmt)


@playbooks_group.command("done")
@click.argument("run_id")
@click.argument("step_id")
@click.option("--notes", default="")
@click.option("--evidence", multiple=True, help="Evidence reference (repeatable).")
@actor_option
@pass_app
def task_done(app: Any, run_id: str, step_id: str, notes: str, evidence: tuple[str, ...],
              actor: str) -> None:
    """Mark a task as done; the run carries on."""
    _print_run(_engine(app).complete_task(run_id, step_id, actor, notes, evidence))


@playbooks_group.command("approve")
@click.argument("run_id")
@click.argument("step_id")
@click.option("--comment", default="")
@click.option("--reject", is_flag=True, help="Refuse the action instead.")
@actor_option
@pass_app
def approve(app: Any, run_id: str, step_id: str, comment: str, reject: bool,
            actor: str) -> None:
    """Approve (or --reject) a destructive action waiting for an approval."""
    _print_run(_engine(app).decide(run_id, step_id, actor, approve=not reject,
                                   comment=comment))


@playbooks_group.command("approvals")
@actor_option
@format_option(("table", "jsonl"))
@pass_app
def approvals(app: Any, actor: str, fmt: str) -> None:
    """Actions waiting for an approval ACTOR's role may give."""
    rows = [{"run": run.id, "step": step.id, "action": step.action, "case_id": run.case_id,
             "inputs": run.steps[step.id].inputs,
             "requested_at": (run.steps[step.id].approval or {}).get("requested_at")}
            for run, step in _engine(app).pending_approvals(actor)]
    emit(rows, fmt, ["run", "step", "action", "case_id", "requested_at"])


@playbooks_group.command("resume")
@click.argument("run_id", required=False)
@actor_option
@pass_app
def resume(app: Any, run_id: str | None, actor: str) -> None:
    """Retry the failed step of a paused run; with no RUN_ID, resume runs interrupted
    by a stop of the service."""
    engine = _engine(app)
    if run_id:
        _print_run(engine.retry(run_id, actor))
        return
    for run in engine.resume_interrupted(actor):
        click.echo(f"{run.id}\t{run.status}")


@playbooks_group.command("skip")
@click.argument("run_id")
@click.argument("step_id")
@click.option("--reason", required=True)
@actor_option
@pass_app
def skip(app: Any, run_id: str, step_id: str, reason: str, actor: str) -> None:
    """Skip a step (a failed one, or one not needed), with the reason."""
    _print_run(_engine(app).skip(run_id, step_id, actor, reason))


@playbooks_group.command("cancel")
@click.argument("run_id")
@click.option("--reason", default="")
@actor_option
@pass_app
def cancel(app: Any, run_id: str, reason: str, actor: str) -> None:
    """Stop a run."""
    _print_run(_engine(app).cancel(run_id, actor, reason))


COMMANDS = [playbooks_group]
