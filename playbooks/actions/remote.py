"""Containment through other systems: disable an account, isolate a host (webhooks)."""

from __future__ import annotations

from typing import Any, ClassVar

from govsoc.errors import ActionError
from playbooks.actions.base import Action, ActionContext
from playbooks.actions.http import post_json
from playbooks.actions.notify import configured_webhook

_TARGETS = {"anyOf": [{"type": "string", "minLength": 1},
                      {"type": "array", "items": {"type": "string", "minLength": 1}}]}


def _schema(target_key: str) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": [target_key],
            "properties": {target_key: _TARGETS, "webhook": {"type": "string"},
                           "reason": {"type": "string"}}}


class _RemoteContainment(Action):
    destructive = True
    target_key: ClassVar[str]
    operation: ClassVar[str]

    def _targets(self, params: dict[str, Any]) -> list[str]:
        value = params[self.target_key]
        targets = [value] if isinstance(value, str) else list(value)
        targets = sorted({t.strip() for t in targets if t and t.strip()})
        if not targets:
            raise ActionError(self.name, f"no {self.target_key} to act on")
        return targets

    def plan(self, params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
        hook = configured_webhook(self.name, params.get("webhook", self.name), ctx)
        return {"would_post_to": hook["url"], "operation": self.operation,
                self.target_key: self._targets(params)}

    def run(self, params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
        hook = configured_webhook(self.name, params.get("webhook", self.name), ctx)
        results = []
        for target in self._targets(params):
            payload = {"operation": self.operation, self.target_key: target,
                       "reason": params.get("reason", ""), "case_id": ctx.case_id,
                       "run_id": ctx.run_id, "requested_by": ctx.actor}
            answer = post_json(self.name, hook["url"], payload,
                               timeout=ctx.remaining(float(hook.get("timeout", 15))),
                               headers=hook.get("headers"),
                               idempotency_key=f"{ctx.idempotency_key}:{target}",
                               verify_tls=bool(hook.get("verify_tls", True)))
            results.append({self.target_key: target, **answer})
        return {"operation": self.operation, "results": results}


class DisableAccount(_RemoteContainment):
    name = "disable_account"
    description = "Disable user accounts through the configured identity webhook."
    target_key = "user"
    params_schema: ClassVar[dict[str, Any]] = _schema("user")
    operation = "disable_account"


class IsolateHost(_RemoteContainment):
    name = "isolate_host"
    description = "Isolate hosts from the network through the configured EDR/NAC webhook."
    target_key = "host"
    params_schema: ClassVar[dict[str, Any]] = _schema("host")
    operation = "isolate_host"
