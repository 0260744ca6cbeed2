"""Create or update the case a playbook run works on."""

from __future__ import annotations

from typing import Any, ClassVar

from govsoc.errors import ActionError, ConflictError, NotFoundError
from playbooks.actions.base import Action, ActionContext
from playbooks.actions.enrich import normalise_observables

_ATTEMPTS = 5


class CreateCase(Action):
    name = "create_case"
    description = "Open a case for the alert the run started from (reuses an existing one)."
    params_schema: ClassVar[dict[str, Any]] = {
        "type": "object", "additionalProperties": False,
        "properties": {"title": {"type": "string", "minLength": 1},
                       "description": {"type": "string"},
                       "severity": {"enum": ["informational", "low", "medium", "high",
                                             "critical"]},
                       "tags": {"type": "array", "items": {"type": "string"}}},
    }

    def plan(self, params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
        if ctx.case_id:
            return {"case_id": ctx.case_id, "created": False}
        return {"would_create": params.get("title", "(from the alert)")}

    def run(self, params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
        from store.base import NewCase, Observable, Severity

        if ctx.case_id:
            return {"case_id": ctx.case_id, "created": False}
        if not ctx.alert_id:
            raise ActionError(self.name, "the run has neither a case nor an alert")
        alert = ctx.store.get_alert(ctx.alert_id)
        if alert.case_id:
            # a previous attempt (or a person) already opened it
            return {"case_id": alert.case_id, "created": False}
        observables = [Observable(o["type"], o["value"], alert.id)
                       for o in normalise_observables(ctx.variables.get("observables", {}))]
        case = ctx.store.create_case(NewCase(
            title=params.get("title") or alert.rule_name, created_by=ctx.actor,
            description=params.get("description", alert.description),
            severity=Severity.parse(params.get("severity") or alert.severity.value),
            alert_ids=[alert.id], observables=observables,
            tags=sorted(set(params.get("tags", [])) | set(alert.tags))))
        return {"case_id": case.id, "created": True}


class UpdateCase(Action):
    name = "update_case"
    description = "Add tags, observables, a comment; change the case's severity or status."
    params_schema: ClassVar[dict[str, Any]] = {
        "type": "object", "additionalProperties": False,
        "properties": {
            "add_tags": {"type": "array", "items": {"type": "string"}},
            "add_observables": {"type": ["object", "array"]},
            "severity": {"enum": ["informational", "low", "medium", "high", "critical"]},
            "status": {"enum": ["open", "in_progress", "resolved", "closed"]},
            "comment": {"type": "string"},
        },
    }

    def plan(self, params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
        return {"would_update": ctx.case_id or "(the case opened by this run)",
                "change": params}

    def run(self, params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
        from store.base import CaseChange, CaseStatus, Observable, Severity

        if not ctx.case_id:
            raise ActionError(self.name, "the run has no case (add a create_case step first)")
        for _ in range(_ATTEMPTS):
            try:
                case = ctx.store.get_case(ctx.case_id)
            except NotFoundError:
                raise ActionError(self.name, f"case {ctx.case_id} does not exist") from None
            change = CaseChange()
            changed: list[str] = []
            tags = list(case.tags)
            for tag in params.get("add_tags", []):
                if tag and tag not in tags:
                    tags.append(tag)
            if tags != case.tags:
                change.tags, changed = tags, [*changed, "tags"]
            known = {(o.type, o.value) for o in case.observables}
            new = [Observable(o["type"], o["value"]) for o in
                   normalise_observables(params.get("add_observables") or [])
                   if (o["type"], o["value"]) not in known]
            if new:
                change.observables = [*case.observables, *new]
                changed.append("observables")
            if params.get("severity") and params["severity"] != case.severity.value:
                change.severity = Severity.parse(params["severity"])
                changed.append("severity")
            if params.get("status") and params["status"] != case.status.value:
                change.status = CaseStatus(params["status"])
                changed.append("status")
            if changed:
                try:
                    ctx.store.update_case(case.id, case.version, change)
                except ConflictError:
                    continue
            break
        else:
            raise ActionError(self.name, f"case {ctx.case_id} kept changing; try again",
                              retryable=True)
        comment = params.get("comment")
        if comment:
            # the same comment twice (a retried step) is written once
            existing = ctx.store.list_comments("case", case.id)
            if not any(c.body == comment and c.author == ctx.actor for c in existing):
                ctx.store.add_comment("case", case.id, ctx.actor, comment)
                changed.append("comment")
        return {"case_id": case.id, "changed": changed}
