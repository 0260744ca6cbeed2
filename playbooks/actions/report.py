"""Generate a report from the run's case: the national incident report (HTML or PDF)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from govsoc.errors import ActionError, GovsocError
from playbooks.actions.base import Action, ActionContext


class GenerateReport(Action):
    name = "generate_report"
    description = ("Write the national incident report (notification, initial or final) for "
                   "the run's case to the outputs directory, and keep its draft on the case.")
    params_schema: ClassVar[dict[str, Any]] = {
        "type": "object", "additionalProperties": False, "required": ["kind"],
        "properties": {"kind": {"enum": ["notification", "initial", "final"]},
                       "format": {"enum": ["html", "pdf"]}},
    }

    def _target(self, params: dict[str, Any], ctx: ActionContext) -> Path:
        fmt = params.get("format", "html")
        return ctx.outputs_dir / "reports" / f"{ctx.case_id}-{params['kind']}.{fmt}"

    def plan(self, params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
        return {"would_write": str(self._target(params, ctx)) if ctx.case_id
                else "(the case opened by this run)", "kind": params["kind"]}

    def run(self, params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
        from playbooks.reports.incident import build_incident_report, write_incident_report

        if not ctx.case_id:
            raise ActionError(self.name, "the run has no case to report on")
        target = self._target(params, ctx)
        try:
            report = build_incident_report(ctx.store, ctx.config, ctx.case_id, params["kind"])
            write_incident_report(report, target, params.get("format", "html"), ctx.config,
                                  timeout=ctx.remaining(120))
        except GovsocError as exc:
            raise ActionError(self.name, str(exc)) from None
        return {"path": str(target), "kind": params["kind"]}
