"""Administration: users and roles, the audit log, dead letters."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from console import audit
from console.app import get_store
from console.auth import save_user
from console.i18n import LANGUAGES
from console.permissions import ROLE_PERMISSIONS, Permission, requires
from console.queries import FilterError, _time, page_url
from govsoc.errors import ConflictError
from govsoc.events import utcnow
from govsoc.passwords import hash_password, password_problem
from store.base import AuditFilter, Role, User

bp = Blueprint("admin", __name__, url_prefix="/admin")

USERNAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._-@")


def username_problem(name: str) -> str | None:
    if not 2 <= len(name) <= 64 or not set(name) <= USERNAME_CHARS:
        return _("A user name has 2 to 64 characters: lower-case letters, digits, . _ - @")
    return None


@bp.route("/users")
@requires(Permission.USERS_MANAGE)
def users() -> Any:
    return render_template("admin/users.html", users=get_store().list_users(), roles=list(Role),
                           languages=LANGUAGES, matrix=ROLE_PERMISSIONS,
                           permissions=list(Permission))


@bp.route("/users", methods=["POST"])
@requires(Permission.USERS_MANAGE)
def create_user() -> Any:
    form = request.form
    name = form.get("username", "").strip().lower()
    problem = username_problem(name) or password_problem(form.get("password", ""))
    try:
        role = Role(form.get("role", ""))
    except ValueError:
        problem = problem or _("Unknown role.")
        role = Role.ANALYST
    if problem:
        flash(problem, "error")
        return redirect(url_for("admin.users"), 303)
    language = form.get("language", "vi")
    user = User(username=name, password_hash=hash_password(form.get("password", "")),
                role=role, created_at=utcnow(),
                display_name=form.get("display_name", "").strip()[:200],
                email=form.get("email", "").strip()[:200],
                language=language if language in LANGUAGES else "vi")
    try:
        created = get_store().create_user(user)
    except ConflictError:
        flash(_("A user with that name exists."), "error")
        return redirect(url_for("admin.users"), 303)
    audit.record("user.create", "user", created.username, after=created)
    flash(_("User created."), "ok")
    return redirect(url_for("admin.users"), 303)


def _active_admins() -> int:
    return sum(1 for u in get_store().list_users() if u.role == Role.ADMIN and not u.disabled)


@bp.route("/users/<username>", methods=["POST"])
@requires(Permission.USERS_MANAGE)
def change_user(username: str) -> Any:
    """Set the role, disable/enable, unlock, or reset the password of a user."""
    store = get_store()
    user = store.get_user(username)
    action = request.form.get("action", "")
    changes: dict[str, Any] = {}
    if action == "role":
        try:
            role = Role(request.form.get("role", ""))
        except ValueError:
            abort(400)
        if user.role == Role.ADMIN and role != Role.ADMIN and _active_admins() <= 1:
            flash(_("The last administrator keeps the administrator role."), "error")
            return redirect(url_for("admin.users"), 303)
        changes["role"] = role
    elif action in ("disable", "enable"):
        if action == "disable" and user.username == current_user.username:
            flash(_("You cannot disable yourself."), "error")
            return redirect(url_for("admin.users"), 303)
        changes["disabled"] = action == "disable"
    elif action == "unlock":
        changes.update(failed_logins=0, locked_until=None)
    elif action == "password":
        password = request.form.get("password", "")
        problem = password_problem(password)
        if problem:
            flash(problem, "error")
            return redirect(url_for("admin.users"), 303)
        changes["password_hash"] = hash_password(password)
    else:
        abort(400)
    updated = save_user(user, **changes)
    before, after = audit.changed_fields(user, updated)
    audit.record(f"user.{action}", "user", user.username, before, after)
    flash(_("User updated."), "ok")
    return redirect(url_for("admin.users"), 303)


@bp.route("/audit")
@requires(Permission.AUDIT_VIEW)
def audit_log() -> Any:
    args = request.args
    try:
        flt = AuditFilter(actor=args.get("actor") or None, action=args.get("action") or None,
                          target_type=args.get("target_type") or None,
                          target_id=args.get("target_id") or None,
                          start=_time("start", args.get("start")),
                          end=_time("end", args.get("end")))
    except FilterError as exc:
        flash(str(exc), "error")
        return render_template("admin/audit.html", page=None, args=args, next_url=None), 400
    page = get_store().list_audit(flt, limit=100, after=args.get("after") or None)
    next_url = page_url("admin.audit_log", args, page.next_cursor)
    return render_template("admin/audit.html", page=page, args=args, next_url=next_url)


def preview(data: bytes, limit: int = 600) -> str:
    """Raw bytes of a dead letter as text; undecodable bytes shown as \\xNN."""
    text = data[:limit].decode("utf-8", "backslashreplace")
    text = "".join(ch if ch.isprintable() or ch in "\n\t" else f"\\x{ord(ch):02x}"
                   for ch in text)
    return text + ("…" if len(data) > limit else "")


@bp.route("/dead-letters")
@requires(Permission.DEADLETTERS_VIEW)
def dead_letters() -> Any:
    store = get_store()
    source = request.args.get("source") or None
    page = store.list_dead_letters(limit=100, after=request.args.get("after") or None,
                                   source=source)
    next_url = url_for("admin.dead_letters", after=page.next_cursor, source=source) \
        if page.next_cursor else None
    return render_template("admin/dead_letters.html", page=page, total=store.count_dead_letters(),
                           preview=preview, next_url=next_url, source=source or "")


@bp.route("/sensors")
@requires(Permission.SENSORS_VIEW)
def sensors() -> Any:
    """The service's inputs (state, restarts, last error, records), its queue and
    pipeline figures, and every collector checkpoint kept in the store."""
    from flask import current_app

    store = get_store()
    service = current_app.extensions.get("govsoc_service")
    health = service.health()[1] if service is not None else None
    checkpoints = sorted(store.list_checkpoints().items())
    return render_template("admin/sensors.html", health=health, checkpoints=checkpoints,
                           dead_letters=store.count_dead_letters())
