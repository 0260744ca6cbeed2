"""Rules pages for detection engineers: the rules with their state and hit counts,
one rule's source, enabling and disabling, uploading a rule (validated by the
detection engine) and testing a rule on recent stored events; and the list of
suppressions created by "suppress similar"."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from console import audit
from console.app import get_store
from console.permissions import Permission, requires
from console.rulebook import (
    CUSTOM_KEY,
    DISABLED_KEY,
    MAX_RULE_BYTES,
    catalogue,
    disabled_rules,
    find_rule,
)
from console.ruletest import check, run_test
from govsoc.events import utcnow
from store.base import AlertFilter

LANGUAGES = ("sigma", "yara")
TEST_HOURS = (1, 24, 168, 720)

bp = Blueprint("rules", __name__, url_prefix="/rules")


@bp.route("")
@requires(Permission.RULES_VIEW)
def index() -> Any:
    rules = catalogue()
    hits = get_store().count_alerts(AlertFilter(), by="rule_id")
    disabled = disabled_rules()
    language = request.args.get("language", "")
    text = request.args.get("q", "").strip().lower()
    if language in ("sigma", "yara"):
        rules = [r for r in rules if r.language == language]
    if text:
        rules = [r for r in rules if text in r.name.lower() or text in r.id.lower()]
    return render_template("rules/index.html", rules=rules, hits=hits, disabled=disabled,
                           language=language, q=text)


@bp.route("/<path:rule_id>/view")
@requires(Permission.RULES_VIEW)
def view(rule_id: str) -> Any:
    rule = find_rule(rule_id)
    if rule is None:
        abort(404)
    hits = get_store().count_alerts(AlertFilter(rule_ids=[rule_id]), by="status")
    return render_template("rules/view.html", rule=rule, hits=hits,
                           enabled=rule_id not in disabled_rules())


@bp.route("/<path:rule_id>/state", methods=["POST"])
@requires(Permission.RULES_EDIT)
def set_state(rule_id: str) -> Any:
    if find_rule(rule_id) is None:
        abort(404)
    enable = request.form.get("enabled") == "1"
    was_enabled = True

    def switch(value: Any) -> list[str]:
        nonlocal was_enabled
        disabled = {str(v) for v in value} if isinstance(value, list) else set()
        was_enabled = rule_id not in disabled
        if enable:
            disabled.discard(rule_id)
        else:
            disabled.add(rule_id)
        return sorted(disabled)

    # one atomic change: another person switching another rule at once is kept
    get_store().update_setting(DISABLED_KEY, switch)
    audit.record("rule.enable" if enable else "rule.disable", "rule", rule_id,
                 {"enabled": was_enabled}, {"enabled": enable})
    flash(_("Rule enabled.") if enable else _("Rule disabled."), "ok")
    return redirect(url_for("rules.view", rule_id=rule_id), 303)


@bp.route("/suppressions")
@requires(Permission.RULES_VIEW)
def suppressions() -> Any:
    return render_template("rules/suppressions.html",
                           suppressions=get_store().list_suppressions())


@bp.route("/suppressions/<suppression_id>/delete", methods=["POST"])
@requires(Permission.ALERTS_SUPPRESS)
def delete_suppression(suppression_id: str) -> Any:
    store = get_store()
    existing = {s.id: s for s in store.list_suppressions()}
    if suppression_id not in existing:
        abort(404)
    store.delete_suppression(suppression_id)
    audit.record("suppression.delete", "suppression", suppression_id,
                 before=existing[suppression_id])
    flash(_("Suppression removed."), "ok")
    return redirect(url_for("rules.suppressions"), 303)


def _hours() -> int:
    try:
        hours = int(request.values.get("hours", "24"))
    except ValueError:
        hours = 24
    return hours if hours in TEST_HOURS else 24


def _uploaded_text() -> str | None:
    """The rule text from the file field or the text area (None when too big or binary)."""
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        raw = upload.read(MAX_RULE_BYTES + 1)
    else:
        raw = request.form.get("text", "").encode("utf-8")
    if len(raw) > MAX_RULE_BYTES:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    # browsers send text areas with CRLF line ends; the engines' line numbers
    # must match the lines the person sees
    return text.replace("\r\n", "\n")


@bp.route("/upload", methods=["GET", "POST"])
@requires(Permission.RULES_EDIT)
def upload() -> Any:
    """Upload a rule: check it with the engine, optionally try it, then save it."""
    if request.method != "POST":
        return render_template("rules/upload.html", language="sigma", text="", checked=None,
                               run=None, hours_choices=TEST_HOURS, hours=24)
    language = request.form.get("language", "sigma")
    if language not in LANGUAGES:
        abort(400)
    text = _uploaded_text()
    if text is None or not text.strip():
        flash(_("The rule must be UTF-8 text of at most 512 KiB."), "error")
        return render_template("rules/upload.html", language=language, text="", checked=None,
                               run=None, hours_choices=TEST_HOURS, hours=24), 400
    checked = check(language, text)
    hours = _hours()
    action = request.form.get("action", "check")
    if not checked.ok:
        return render_template("rules/upload.html", language=language, text=text,
                               checked=checked, run=None, hours_choices=TEST_HOURS,
                               hours=hours), 400
    if action == "save":
        key = checked.ids[0]
        item = {"language": language, "name": checked.names[0], "text": text,
                "ids": checked.ids, "uploaded_by": current_user.username,
                "uploaded_at": utcnow().isoformat()}
        before: Any = None

        def add(value: Any) -> dict[str, Any]:
            nonlocal before
            uploads = dict(value) if isinstance(value, dict) else {}
            before = uploads.get(key)
            uploads[key] = item
            return uploads

        get_store().update_setting(CUSTOM_KEY, add)
        audit.record("rule.upload", "rule", key, before, item)
        flash(_("Rule saved."), "ok")
        return redirect(url_for("rules.view", rule_id=key), 303)
    run = run_test(get_store(), checked, hours) if action == "test" else None
    return render_template("rules/upload.html", language=language, text=text, checked=checked,
                           run=run, hours_choices=TEST_HOURS, hours=hours)


@bp.route("/<path:rule_id>/test")
@requires(Permission.RULES_VIEW)
def test(rule_id: str) -> Any:
    """Run a known rule over recent stored events."""
    rule = find_rule(rule_id)
    if rule is None:
        abort(404)
    checked = check(rule.language, rule.text)
    hours = _hours()
    run = run_test(get_store(), checked, hours, only=rule_id) if checked.ok else None
    return render_template("rules/test.html", rule=rule, checked=checked, run=run,
                           hours=hours, hours_choices=TEST_HOURS)
