"""The playbook engine: start runs, execute their steps, wait for people, resume.

Steps run in order. A task waits for a person (unless ``blocking: false``); a
destructive action waits for an approval by a permitted role; an action runs with
its timeout and retries, and its inputs, output and errors are recorded. A failed
step pauses, continues or aborts the run as the playbook says. Every change is
written to the store before the next step starts and audited, so a restarted
service resumes each run where it stopped (:meth:`PlaybookEngine.resume_interrupted`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from govsoc.config import Config
from govsoc.errors import ActionError, ConflictError, GovsocError, NotFoundError, PlaybookError
from govsoc.events import utcnow
from playbooks import runs as R
from playbooks.actions import ACTIONS, Action, ActionContext
from playbooks.loader import PlaybookLibrary, parse_playbook
from playbooks.model import Playbook, Step
from playbooks.runs import Run, RunRepository, StepRecord, now_text
from playbooks.settings import section
from playbooks.templating import evaluate_condition, render_value
from playbooks.triggers import matching_playbooks

log = logging.getLogger(__name__)

_OBSERVABLE_FIELDS = {
    "ip": ("source.ip", "destination.ip", "client.ip", "server.ip", "host.ip"),
    "domain": ("dns.question.name", "url.domain", "destination.domain", "server.domain"),
    "url": ("url.full", "url.original"),
    "hash": ("file.hash.sha256", "file.hash.sha1", "file.hash.md5", "process.hash.sha256"),
    "user": ("user.name", "winlog.event_data.TargetUserName"),
    "host": ("host.name", "host.hostname"),
    "file": ("file.path", "file.name"),
    "email": ("email.from.address", "email.sender.address"),
}


def _plain(obj: Any) -> Any:
    """A store record as JSON-like data for templates (enums to values, dates to text)."""
    from dataclasses import fields, is_dataclass
    from enum import Enum

    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _plain(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    return obj


def observables_of(case: Any = None, alerts: Sequence[Any] = ()) -> dict[str, list[str]]:
    """Observables by type from a case's list and its alerts' fields."""
    found: dict[str, list[str]] = {kind: [] for kind in _OBSERVABLE_FIELDS}

    def add(kind: str, value: Any) -> None:
        if value in (None, "", "-"):
            return
        for item in value if isinstance(value, list) else [value]:
            text = str(item)
            bucket = found.setdefault(kind, [])
            if text not in bucket:
                bucket.append(text)

    if case is not None:
        for obs in case.observables:
            add(obs.type, obs.value)
    for alert in alerts:
        add("ip", alert.source_ip)
        add("ip", alert.destination_ip)
        add("host", alert.host)
        add("user", alert.user)
        for kind, names in _OBSERVABLE_FIELDS.items():
            for name in names:
                add(kind, (alert.fields or {}).get(name))
    return found


class PlaybookEngine:
    """Runs playbooks against the store; safe to share between threads of one process."""

    def __init__(self, store: Any, config: Config, library: PlaybookLibrary,
                 actions: dict[str, Action] | None = None,
                 sleep: Callable[[float], None] = time.sleep, background: bool = False) -> None:
        self.store = store
        #: carry runs on in a worker thread after a person's decision (a web request
        #: must not wait for a slow firewall or webhook)
        self.background = background
        self.config = config
        self.library = library
        self.actions = ACTIONS if actions is None else actions
        self.runs = RunRepository(store)
        self._sleep = sleep
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    # ------------------------------------------------------------ starting
    def start(self, playbook_id: str, *, actor: str, case_id: str | None = None,
              alert_id: str | None = None, dry_run: bool = False, trigger: str = "manual",
              language: str = "vi", advance: bool = True) -> Run:
        playbook = self.library.get(playbook_id)
        if case_id is None and alert_id is None:
            raise PlaybookError("a run needs a case or an alert")
        if case_id is not None:
            self.store.get_case(case_id)  # raises NotFoundError for a wrong id
        if alert_id is not None:
            alert = self.store.get_alert(alert_id)
            case_id = case_id or alert.case_id
        now = now_text()
        run = Run(id=R.new_run_id(), playbook_id=playbook.id,
                  playbook_version=playbook.version, playbook=playbook.document,
                  actor=actor, status=R.RUNNING, created_at=now, updated_at=now,
                  dry_run=dry_run, case_id=case_id, alert_id=alert_id, trigger=trigger,
                  language=language, steps={s.id: StepRecord(s.id) for s in playbook.steps})
        self.runs.create(run)
        self._audit(actor, "playbook.run.start", run, after={
            "playbook": playbook.id, "version": playbook.version, "dry_run": dry_run,
            "case_id": case_id, "alert_id": alert_id, "trigger": trigger})
        if case_id and not dry_run:
            self._link_case(run)
        return self._continue(run.id) if advance else run

    def suggest(self, *, case_id: str | None = None, alert_id: str | None = None) -> list[Playbook]:
        """Playbooks whose triggers fit the case (through its alerts) or the alert."""
        if alert_id is not None:
            return matching_playbooks(self.library, self.store.get_alert(alert_id), "alert")
        if case_id is None:
            return []
        case = self.store.get_case(case_id)
        alerts = self._alerts_of(case)
        subject = [{"tags": case.tags, "severity": case.severity.value}, *alerts]
        return matching_playbooks(self.library, subject, "case")

    def auto_start(self, alert: Any, actor: str = "govsoc") -> list[Run]:
        """Start the playbooks with an ``auto_run`` trigger that fit a new alert.

        A playbook already run (or running) for the alert or its case is not started
        again. Approval gates and tasks stay in force: the run waits for people there.
        """
        if not self.config.get("playbooks.auto_run", True):
            return []
        started: list[Run] = []
        for playbook in matching_playbooks(self.library, alert, "alert", auto_only=True):
            existing = [r for r in self.runs.list()
                        if r.playbook_id == playbook.id and not r.dry_run
                        and (r.alert_id == alert.id
                             or (alert.case_id is not None and r.case_id == alert.case_id))]
            if existing:
                continue
            started.append(self.start(playbook.id, actor=actor, alert_id=alert.id,
                                      trigger="auto"))
        return started

    # ------------------------------------------------------------ people
    def complete_task(self, run_id: str, step_id: str, actor: str, notes: str = "",
                      evidence: Sequence[str] = ()) -> Run:
        with self._lock(run_id):
            run = self.runs.get(run_id)
            record = run.step(step_id)
            step = self._playbook(run).step(step_id)
            if step.type != "task":
                raise PlaybookError(f"step {step_id} of run {run_id} is not a task")
            if record.status not in (R.WAITING_TASK, R.PENDING):
                raise PlaybookError(f"task {step_id} of run {run_id} is {record.status}, "
                                    "not waiting")
            if step.evidence_required and not evidence:
                raise PlaybookError(f"task {step_id} needs evidence attached")
            before = record.status
            record.status = R.DONE
            record.finished_at = now_text()
            record.task = {"done_by": actor, "notes": notes, "evidence": list(evidence),
                           "owner_role": step.owner_role}
            if run.status == R.WAITING:
                run.status = R.RUNNING
            self.runs.save(run)
            self._audit(actor, "playbook.task.done", run, step_id,
                        before={"status": before}, after=record.task)
        return self._continue(run_id)

    def decide(self, run_id: str, step_id: str, actor: str, approve: bool,
               comment: str = "") -> Run:
        """Approve or reject a destructive action waiting for an approval."""
        with self._lock(run_id):
            run = self.runs.get(run_id)
            record = run.step(step_id)
            step = self._playbook(run).step(step_id)
            if record.status != R.WAITING_APPROVAL:
                raise PlaybookError(f"step {step_id} of run {run_id} is {record.status}, "
                                    "not waiting for an approval")
            roles = self._approver_roles(step)
            role = self._role_of(actor)
            if role not in roles:
                self._audit(actor, "playbook.approval.refused", run, step_id,
                            after={"role": role, "allowed": list(roles)})
                raise PlaybookError(f"{actor} ({role or 'unknown user'}) may not approve "
                                    f"{step.action}; allowed roles: {', '.join(roles)}")
            decision = {"decision": "approved" if approve else "rejected", "by": actor,
                        "role": role, "at": now_text(), "comment": comment}
            record.approval = {**(record.approval or {}), **decision}
            if approve:
                record.status = R.PENDING
                run.status = R.RUNNING
            else:
                record.status = R.REJECTED
                record.finished_at = now_text()
                run.status = R.RUNNING
            self.runs.save(run)
            self._audit(actor, f"playbook.approval.{decision['decision']}", run, step_id,
                        after=decision)
        return self._continue(run_id)

    def retry(self, run_id: str, actor: str) -> Run:
        """Resume a paused run: the failed step is tried again."""
        with self._lock(run_id):
            run = self.runs.get(run_id)
            if run.status != R.PAUSED:
                raise PlaybookError(f"run {run_id} is {run.status}, not paused")
            for record in run.steps.values():
                if record.status == R.STEP_FAILED:
                    record.status = R.PENDING
                    record.error = None
            run.status = R.RUNNING
            run.reason = None
            self.runs.save(run)
            self._audit(actor, "playbook.run.resume", run)
        return self._continue(run_id)

    def skip(self, run_id: str, step_id: str, actor: str, reason: str) -> Run:
        with self._lock(run_id):
            run = self.runs.get(run_id)
            record = run.step(step_id)
            if record.status in R.TERMINAL_STEP and record.status != R.STEP_FAILED:
                raise PlaybookError(f"step {step_id} is already {record.status}")
            before = record.status
            record.status = R.SKIPPED
            record.finished_at = now_text()
            record.task = {**(record.task or {}), "skipped_by": actor, "reason": reason}
            if run.status in (R.PAUSED, R.WAITING):
                run.status = R.RUNNING
                run.reason = None
            self.runs.save(run)
            self._audit(actor, "playbook.step.skip", run, step_id, before={"status": before},
                        after={"reason": reason})
        return self._continue(run_id)

    def cancel(self, run_id: str, actor: str, reason: str = "") -> Run:
        with self._lock(run_id):
            run = self.runs.get(run_id)
            if run.status not in R.ACTIVE_STATUSES:
                raise PlaybookError(f"run {run_id} is already {run.status}")
            before = run.status
            run.status = R.CANCELLED
            run.reason = reason or None
            run.finished_at = now_text()
            self.runs.save(run)
            self._audit(actor, "playbook.run.cancel", run, before={"status": before},
                        after={"reason": reason})
            self._link_case(run)
        return run

    def pending_approvals(self, actor: str) -> list[tuple[Run, Step]]:
        """Actions waiting for an approval ``actor``'s role may give."""
        role = self._role_of(actor)
        waiting = []
        for run in self.runs.list((R.WAITING,)):
            playbook = self._playbook(run)
            for step in playbook.steps:
                if run.steps[step.id].status == R.WAITING_APPROVAL and \
                        role in self._approver_roles(step):
                    waiting.append((run, step))
        return waiting

    def resume_interrupted(self, actor: str = "govsoc") -> list[Run]:
        """After a restart: carry on with every run that was executing steps.

        A run another live process on this machine is executing (the console while the
        service restarts) is left to it.
        """
        resumed = []
        for run in self.runs.list((R.RUNNING,)):
            if _executor_alive(run.executor):
                continue
            self._audit(actor, "playbook.run.recover", run, after={
                "interrupted_steps": [s.id for s in run.steps.values()
                                      if s.status == R.STEP_RUNNING]})
            resumed.append(self.advance(run.id))
        return resumed

    # ------------------------------------------------------------ execution
    def _continue(self, run_id: str) -> Run:
        if not self.background:
            return self.advance(run_id)
        worker = threading.Thread(target=self._advance_logged, args=(run_id,),
                                  name=f"playbook-run-{run_id}", daemon=True)
        worker.start()
        return self.runs.get(run_id)

    def _advance_logged(self, run_id: str) -> None:
        try:
            self.advance(run_id)
        except Exception:  # a worker thread has no caller to raise to
            log.exception("playbook run %s stopped with an error", run_id)

    def advance(self, run_id: str) -> Run:
        """Execute steps until the run finishes or waits for people."""
        with self._lock(run_id):
            run = self.runs.get(run_id)
            if run.status != R.RUNNING:
                return run
            playbook = self._playbook(run)
            run.executor = {"host": socket.gethostname(), "pid": os.getpid(),
                            "since": now_text()}
            waiting = False
            for step in playbook.steps:
                record = run.steps.setdefault(step.id, StepRecord(step.id))
                if record.status in R.TERMINAL_STEP:
                    continue
                if record.status in (R.WAITING_TASK, R.WAITING_APPROVAL):
                    if record.status == R.WAITING_APPROVAL or step.blocking:
                        waiting = True
                        break
                    continue
                outcome = self._execute(run, step, record)
                if outcome == "wait":
                    waiting = True
                    break
                if outcome == "wait_nonblocking":
                    continue
                if outcome in ("pause", "abort"):
                    break
            if run.status == R.RUNNING:
                open_tasks = [s for s in run.steps.values() if s.status == R.WAITING_TASK]
                if waiting or open_tasks:
                    run.status = R.WAITING
                else:
                    run.status = R.COMPLETED
                    run.finished_at = now_text()
                    self._audit(run.actor, "playbook.run.complete", run,
                                after={"progress": "{}/{}".format(*run.progress)})
            run.executor = None
            self.runs.save(run)
            if run.case_id and not run.dry_run:
                self._link_case(run)
            return run

    def _execute(self, run: Run, step: Step, record: StepRecord) -> str:
        variables = self._variables(run)
        if step.when:
            try:
                applies = evaluate_condition(step.when, variables)
            except PlaybookError as exc:
                return self._fail(run, step, record, str(exc), on_error=step.on_error)
            if not applies:
                record.status = R.SKIPPED
                record.finished_at = now_text()
                record.error = None
                self.runs.save(run)
                self._audit(run.actor, "playbook.step.skip", run, step.id,
                            after={"condition": step.when})
                return "next"
        if step.type == "task":
            return self._open_task(run, step, record)
        return self._run_action(run, step, record, variables)

    def _open_task(self, run: Run, step: Step, record: StepRecord) -> str:
        record.started_at = record.started_at or now_text()
        if run.dry_run:
            record.status = R.PLANNED
            record.finished_at = now_text()
            record.output = {"would_assign_to_role": step.owner_role or "analyst"}
            self.runs.save(run)
            self._audit(run.actor, "playbook.task.planned", run, step.id)
            return "next"
        record.status = R.WAITING_TASK
        self.runs.save(run)
        self._audit(run.actor, "playbook.task.open", run, step.id,
                    after={"owner_role": step.owner_role})
        return "wait" if step.blocking else "wait_nonblocking"

    def _run_action(self, run: Run, step: Step, record: StepRecord,
                    variables: dict[str, Any]) -> str:
        assert step.action is not None
        action = self.actions.get(step.action)
        if action is None:
            return self._fail(run, step, record, f"unknown action {step.action!r}",
                              on_error=step.on_error)
        try:
            params = render_value(step.params, variables)
            action.validate(params)
        except GovsocError as exc:
            record.inputs = None
            return self._fail(run, step, record, str(exc), on_error=step.on_error)
        record.inputs = params
        needs_approval = action.destructive or (step.approval is not None
                                                and step.approval.required)
        if needs_approval and not run.dry_run and not (
                record.approval and record.approval.get("decision") == "approved"):
            record.status = R.WAITING_APPROVAL
            record.approval = {"requested_at": now_text(),
                               "roles": list(self._approver_roles(step))}
            self.runs.save(run)
            self._audit(run.actor, "playbook.approval.request", run, step.id,
                        after={"action": step.action, "inputs": params,
                               "roles": record.approval["roles"]})
            self._tell_approvers(run, step, params)
            return "wait"
        record.status = R.STEP_RUNNING
        record.started_at = record.started_at or now_text()
        record.attempts += 1
        # the record says "running" in the store before anything happens outside, so a
        # crash here leaves a trace that resume_interrupted picks up
        self.runs.save(run)
        self._audit(run.actor, "playbook.action.start", run, step.id,
                    after={"action": step.action, "inputs": params, "dry_run": run.dry_run})
        attempts_left = step.retries + 1
        delay = step.retry_delay
        first = True
        while True:
            if not first:
                record.attempts += 1
                self.runs.save(run)
            first = False
            ctx = self._context(run, step, variables)
            try:
                output = self._call(action, params, ctx, step.timeout, run.dry_run)
            except ActionError as exc:
                attempts_left -= 1
                record.errors.append({"attempt": record.attempts, "at": now_text(),
                                      "error": str(exc)})
                if exc.retryable and attempts_left > 0:
                    self.runs.save(run)
                    self._audit(run.actor, "playbook.action.retry", run, step.id,
                                after={"attempt": record.attempts, "error": str(exc)})
                    self._sleep(delay)
                    delay *= 2
                    continue
                return self._fail(run, step, record, str(exc), on_error=step.on_error)
            break
        record.output = output
        record.error = None
        record.status = R.PLANNED if run.dry_run else R.SUCCEEDED
        record.finished_at = now_text()
        if step.action == "create_case" and isinstance(output, dict) and output.get("case_id") \
                and not run.dry_run:
            run.case_id = str(output["case_id"])
        self.runs.save(run)
        self._audit(run.actor, "playbook.action.done", run, step.id,
                    after={"action": step.action, "output": output, "dry_run": run.dry_run})
        return "next"

    def _call(self, action: Action, params: dict[str, Any], ctx: ActionContext,
              timeout: float, dry_run: bool) -> Any:
        """Run the action in a worker thread so a hung peer cannot hold the run forever."""
        result: dict[str, Any] = {}

        def work() -> None:
            try:
                result["value"] = action.plan(params, ctx) if dry_run else action.run(params, ctx)
            except ActionError as exc:
                result["error"] = exc
            except GovsocError as exc:
                result["error"] = ActionError(action.name, str(exc))
            except Exception as exc:  # a plugin bug must become a recorded step error
                log.exception("action %s failed", action.name)
                result["error"] = ActionError(action.name, f"{type(exc).__name__}: {exc}")

        worker = threading.Thread(target=work, name=f"action-{action.name}", daemon=True)
        worker.start()
        worker.join(timeout)
        if worker.is_alive():
            raise ActionError(action.name, f"timed out after {timeout:g}s", retryable=True)
        if "error" in result:
            raise result["error"]
        return result.get("value")

    def _fail(self, run: Run, step: Step, record: StepRecord, message: str,
              on_error: str) -> str:
        record.status = R.STEP_FAILED
        record.error = message
        record.finished_at = now_text()
        if not record.errors or record.errors[-1].get("error") != message:
            record.errors.append({"attempt": record.attempts, "at": now_text(),
                                  "error": message})
        outcome = "next"
        if run.dry_run:
            # nothing real happened: record the problem and show the rest of the plan
            on_error = "continue"
        if on_error == "pause":
            run.status = R.PAUSED
            run.reason = f"step {step.id} failed: {message}"
            outcome = "pause"
        elif on_error == "abort":
            run.status = R.FAILED
            run.reason = f"step {step.id} failed: {message}"
            run.finished_at = now_text()
            outcome = "abort"
        self.runs.save(run)
        self._audit(run.actor, "playbook.step.fail", run, step.id,
                    after={"error": message, "on_error": on_error})
        return outcome

    def _tell_approvers(self, run: Run, step: Step, params: dict[str, Any]) -> None:
        """E-mail the people who may approve (``playbooks.notify_approvers``); a mail
        problem is audited and logged, it does not hold the run up further."""
        if not self.config.get("playbooks.notify_approvers", False):
            return
        roles = set(self._approver_roles(step))
        recipients = [u.email for u in self.store.list_users()
                      if not u.disabled and u.email and
                      str(getattr(u.role, "value", u.role)) in roles]
        if not recipients:
            return
        action = self.actions["notify_email"]
        message = {
            "to": recipients,
            "subject": f"[govsoc] Chờ phê duyệt / Approval needed: {step.title.vi} — {run.id}",
            "body": (f"Playbook: {run.playbook_id}\nHồ sơ / Case: {run.case_id or '-'}\n"
                     f"Hành động / Action: {step.action}\n"
                     f"Đầu vào / Inputs: {params}\n"
                     f"Người yêu cầu / Requested by: {run.actor}\n"
                     f"govsoc playbooks approve {run.id} {step.id} --as <user>\n"),
        }
        ctx = self._context(run, step, {})
        ctx.idempotency_key = ctx.idempotency_key + "-approval"
        try:
            self._call(action, message, ctx, step.timeout, dry_run=False)
        except ActionError as exc:
            log.warning("could not tell the approvers of run %s: %s", run.id, exc)
            self._audit(run.actor, "playbook.approval.notify_failed", run, step.id,
                        after={"error": str(exc)})
            return
        self._audit(run.actor, "playbook.approval.notified", run, step.id,
                    after={"to": recipients})

    # ------------------------------------------------------------ helpers
    def _lock(self, run_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(run_id, threading.RLock())  # type: ignore[arg-type]

    def _playbook(self, run: Run) -> Playbook:
        return parse_playbook_document(run.playbook, run.playbook_id)

    def _approver_roles(self, step: Step) -> tuple[str, ...]:
        if step.approval is not None:
            return step.approval.roles
        return tuple(self.config.get("playbooks.approver_roles")
                     or section(self.config, "playbooks").get("approver_roles")
                     or ("manager", "admin"))

    def _role_of(self, actor: str) -> str | None:
        try:
            user = self.store.get_user(actor)
        except NotFoundError:
            return None
        if user.disabled:
            return None
        return str(user.role.value if hasattr(user.role, "value") else user.role)

    def _alerts_of(self, case: Any) -> list[Any]:
        alerts = []
        for alert_id in case.alert_ids[:200]:
            try:
                alerts.append(self.store.get_alert(alert_id))
            except NotFoundError:
                continue
        return alerts

    def _variables(self, run: Run) -> dict[str, Any]:
        case = self.store.get_case(run.case_id) if run.case_id else None
        alert = self.store.get_alert(run.alert_id) if run.alert_id else None
        alerts = self._alerts_of(case) if case is not None else []
        if alert is not None and all(a.id != alert.id for a in alerts):
            alerts.insert(0, alert)
        steps = {sid: {"status": rec.status, "output": rec.output}
                 for sid, rec in run.steps.items()}
        attacker_ips: list[str] = []
        for item in alerts:
            if item.source_ip and item.source_ip not in attacker_ips:
                attacker_ips.append(item.source_ip)
        return {
            "attacker_ips": attacker_ips,
            "case": _plain(case), "alert": _plain(alert or (alerts[0] if alerts else None)),
            "alerts": [_plain(a) for a in alerts],
            "observables": observables_of(case, alerts),
            "steps": steps, "run": {"id": run.id, "dry_run": run.dry_run,
                                   "playbook": run.playbook_id, "actor": run.actor},
            "unit": section(self.config, "reports.unit"),
        }

    def _context(self, run: Run, step: Step, variables: dict[str, Any]) -> ActionContext:
        key = hashlib.sha256(f"{run.id}:{step.id}".encode()).hexdigest()[:32]
        return ActionContext(run_id=run.id, step_id=step.id, actor=run.actor,
                             config=self.config, store=self.store, idempotency_key=key,
                             deadline=time.monotonic() + step.timeout, dry_run=run.dry_run,
                             case_id=run.case_id, alert_id=run.alert_id,
                             language=run.language, variables=variables)

    def _audit(self, actor: str, action: str, run: Run, step_id: str | None = None,
               before: Any = None, after: Any = None) -> None:
        from store.base import AuditEntry

        target = f"{run.id}/{step_id}" if step_id else run.id
        self.store.append_audit(AuditEntry(actor=actor, action=action,
                                           target_type="playbook_run", target_id=target,
                                           at=utcnow(), before=before, after=after))

    def _link_case(self, run: Run) -> None:
        """Keep a summary of the run in ``case.extra["playbook_runs"]`` (a list, one entry
        per run, what the case page shows), with optimistic concurrency."""
        from store.base import CaseChange

        assert run.case_id is not None
        for _ in range(5):
            try:
                case = self.store.get_case(run.case_id)
            except NotFoundError:
                return
            extra = dict(case.extra or {})
            entries = [e for e in extra.get("playbook_runs") or [] if isinstance(e, dict)]
            summary = case_run_entry(run)
            current = next((e for e in entries if e.get("id") == run.id), None)
            if current == summary:
                return
            entries = [summary if e.get("id") == run.id else e for e in entries]
            if current is None:
                entries.append(summary)
            extra["playbook_runs"] = entries
            try:
                self.store.update_case(case.id, case.version, CaseChange(extra=extra))
                return
            except ConflictError:
                continue
        log.warning("could not record run %s on case %s: it kept changing", run.id,
                    run.case_id)


def case_run_entry(run: Run) -> dict[str, Any]:
    """What a case keeps about a run on it."""
    done, total = run.progress
    name = run.playbook.get("name") or {}
    return {"id": run.id, "playbook": run.playbook_id, "name": name,
            "status": run.status, "started_at": run.created_at,
            "finished_at": run.finished_at, "progress": f"{done}/{total}",
            "actor": run.actor, "trigger": run.trigger}


def _executor_alive(executor: dict[str, Any] | None) -> bool:
    """Whether the process recorded as executing a run is another live process here."""
    if not executor or executor.get("host") != socket.gethostname():
        # another machine's process cannot be checked; a crash there is resumed here
        return False
    pid = int(executor.get("pid") or 0)
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_PARSED: dict[str, Playbook] = {}


def parse_playbook_document(document: dict[str, Any], playbook_id: str) -> Playbook:
    """The Playbook a run started with, from its stored document (cached)."""
    import json

    import yaml

    key = hashlib.sha256(json.dumps(document, sort_keys=True, default=str).encode()).hexdigest()
    cached = _PARSED.get(key)
    if cached is None:
        cached = parse_playbook(yaml.safe_dump(document, allow_unicode=True),
                                f"<run of {playbook_id}>")
        _PARSED[key] = cached
    return cached
