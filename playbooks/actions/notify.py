"""Notify people: e-mail through the configured SMTP server, or a JSON webhook."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, ClassVar

from govsoc.errors import ActionError
from playbooks.actions.base import Action, ActionContext
from playbooks.actions.http import post_json
from playbooks.settings import section


class NotifyEmail(Action):
    name = "notify_email"
    description = "Send an e-mail through the configured SMTP server (playbooks.smtp)."
    params_schema: ClassVar[dict[str, Any]] = {
        "type": "object", "additionalProperties": False, "required": ["subject", "body"],
        "properties": {
            "to": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
            "subject": {"type": "string", "minLength": 1, "maxLength": 500},
            "body": {"type": "string"},
        },
    }

    def _recipients(self, params: dict[str, Any], ctx: ActionContext) -> list[str]:
        to = params.get("to") or section(ctx.config, "playbooks.smtp").get(
            "default_recipients") or []
        recipients = [to] if isinstance(to, str) else list(to)
        recipients = [r.strip() for r in recipients if r and r.strip()]
        for address in recipients:
            if "@" not in address or any(c in address for c in "\r\n,;<>"):
                raise ActionError(self.name, f"not an e-mail address: {address!r}")
        if not recipients:
            raise ActionError(self.name, "no recipients: give 'to' or set "
                              "playbooks.smtp.default_recipients")
        return recipients

    def _message(self, params: dict[str, Any], ctx: ActionContext,
                 recipients: list[str]) -> EmailMessage:
        smtp = section(ctx.config, "playbooks.smtp")
        message = EmailMessage()
        message["From"] = smtp["sender"]
        message["To"] = ", ".join(recipients)
        # subjects come from templates fed by alert fields: no header injection
        message["Subject"] = " ".join(str(params["subject"]).split())
        message["Date"] = formatdate(localtime=False)
        # the same key on a retry lets the receiving side drop a duplicate
        message["Message-ID"] = f"<{ctx.idempotency_key}@govsoc>"
        message["X-Govsoc-Run"] = ctx.run_id
        message.set_content(str(params["body"]))
        return message

    def plan(self, params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
        recipients = self._recipients(params, ctx)
        return {"would_send_to": recipients, "subject": params["subject"]}

    def run(self, params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
        smtp = section(ctx.config, "playbooks.smtp")
        if not smtp.get("host"):
            raise ActionError(self.name, "no SMTP server configured (playbooks.smtp.host)")
        recipients = self._recipients(params, ctx)
        message = self._message(params, ctx, recipients)
        timeout = ctx.remaining(float(smtp.get("timeout", 20)))
        where = f"{smtp['host']}:{smtp['port']}"
        try:
            client: smtplib.SMTP
            if smtp.get("ssl"):
                client = smtplib.SMTP_SSL(smtp["host"], int(smtp["port"]), timeout=timeout,
                                          context=ssl.create_default_context())
            else:
                client = smtplib.SMTP(smtp["host"], int(smtp["port"]), timeout=timeout)
            with client:
                if smtp.get("starttls") and not smtp.get("ssl"):
                    client.starttls(context=ssl.create_default_context())
                if smtp.get("username"):
                    client.login(smtp["username"], smtp.get("password") or "")
                refused = client.send_message(message, to_addrs=recipients)
        except smtplib.SMTPRecipientsRefused as exc:
            raise ActionError(self.name, f"{where} refused every recipient: "
                              f"{sorted(exc.recipients)}") from None
        except smtplib.SMTPAuthenticationError as exc:
            raise ActionError(self.name, f"{where} refused the login: {exc.smtp_code}") from None
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise ActionError(self.name, f"cannot send through {where}: {exc}",
                              retryable=True) from None
        return {"sent_to": [r for r in recipients if r not in refused],
                "refused": sorted(refused), "message_id": message["Message-ID"],
                "server": where}


class NotifyWebhook(Action):
    name = "notify_webhook"
    description = "POST a JSON notification to a configured webhook (playbooks.webhooks)."
    params_schema: ClassVar[dict[str, Any]] = {
        "type": "object", "additionalProperties": False, "required": ["webhook"],
        "properties": {
            "webhook": {"type": "string", "minLength": 1},
            "message": {"type": "string"},
            "payload": {"type": "object"},
        },
    }

    def _target(self, params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
        return configured_webhook(self.name, params["webhook"], ctx)

    def _payload(self, params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
        payload = dict(params.get("payload") or {})
        payload.setdefault("message", params.get("message", ""))
        payload.setdefault("run_id", ctx.run_id)
        payload.setdefault("step_id", ctx.step_id)
        payload.setdefault("case_id", ctx.case_id)
        payload.setdefault("alert_id", ctx.alert_id)
        return payload

    def plan(self, params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
        target = self._target(params, ctx)
        return {"would_post_to": target["url"], "payload": self._payload(params, ctx)}

    def run(self, params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
        target = self._target(params, ctx)
        answer = post_json(self.name, target["url"], self._payload(params, ctx),
                           timeout=ctx.remaining(float(target.get("timeout", 15))),
                           headers=target.get("headers"),
                           idempotency_key=ctx.idempotency_key,
                           verify_tls=bool(target.get("verify_tls", True)))
        return {"url": target["url"], **answer}


def configured_webhook(action: str, name: str, ctx: ActionContext) -> dict[str, Any]:
    """The webhook ``name`` from playbooks.webhooks; playbooks never carry raw URLs."""
    hooks = section(ctx.config, "playbooks.webhooks")
    target = hooks.get(name)
    if not isinstance(target, dict) or not target.get("url"):
        known = ", ".join(sorted(hooks)) or "none"
        raise ActionError(action, f"no webhook {name!r} configured under playbooks.webhooks "
                          f"(configured: {known})")
    return target
