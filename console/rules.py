"""Rules pages for detection engineers: the rules with their state and hit counts,
one rule's source, enabling and disabling, uploading a rule (validated by the
detection engine) and testing a rule on recent stored events; and the list of
suppressions created by "suppress similar"."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _

from console import audit
from console.app import get_store
from console.permissions import Permission, requires
from console.rulebook import DISABLED_KEY, catalogue, disabled_rules, find_rule
from store.base import AlertFilter

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
    store = get_store()
    before = sorted(disabled_rules())
    after = set(before)
    if enable:
        after.discard(rule_id)
    else:
        after.add(rule_id)
    store.set_setting(DISABLED_KEY, sorted(after))
    audit.record("rule.enable" if enable else "rule.disable", "rule", rule_id,
                 {"enabled": rule_id not in before}, {"enabled": enable})
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
