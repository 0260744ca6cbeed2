"""Signing in and out, the language switch, and a user's own account (language,
time zone, password, API tokens).

Failed sign-ins are counted on the user record; after ``MAX_FAILED_LOGINS`` in a
row the account is locked for ``LOCKOUT``. The message never says whether the
name exists.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
import time
from collections import deque
from datetime import timedelta
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from console import audit
from console.app import get_store
from console.i18n import LANGUAGES, valid_timezone
from console.permissions import Permission, requires
from console.principal import ConsoleUser
from govsoc.errors import ConflictError, NotFoundError
from govsoc.events import utcnow
from govsoc.passwords import (
    hash_password,
    new_token_secret,
    password_problem,
    token_hash,
    verify_password,
)
from store.base import ApiToken, User

bp = Blueprint("auth", __name__)

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
#: failed sign-ins from one address within ADDRESS_WINDOW before it must wait
MAX_FAILURES_PER_ADDRESS = 20
ADDRESS_WINDOW = 600.0


class AddressThrottle:
    """Failed sign-ins per client address, so one address cannot try name after name.

    Kept in memory: it slows a guessing run down; the per-account lockout on the
    user record is what survives a restart.
    """

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[float]:
        times = self._failures.setdefault(address, deque())
        while times and now - times[0] > self.window:
            times.popleft()
        return times

    def blocked(self, address: str) -> bool:
        with self._lock:
            return len(self._recent(address, time.monotonic())) >= self.limit

    def failed(self, address: str) -> None:
        with self._lock:
            now = time.monotonic()
            self._recent(address, now).append(now)
            if len(self._failures) > 10000:  # forget idle addresses
                for key in [k for k, v in self._failures.items() if not v]:
                    del self._failures[key]


def throttle() -> AddressThrottle:
    """The throttle of the running console (one per app)."""
    limit = int(current_app.config.get("SIGNIN_FAILURES_PER_ADDRESS", MAX_FAILURES_PER_ADDRESS))
    found: AddressThrottle = current_app.extensions.setdefault(
        "govsoc.signin_throttle", AddressThrottle(limit, ADDRESS_WINDOW))
    return found


# checked against when the name is unknown, so both paths cost one scrypt
_DUMMY_HASH = hash_password(secrets.token_hex(16))


def safe_next(target: str | None) -> str:
    """A redirect target inside this site only."""
    if target and target.startswith("/") and not target.startswith("//") \
            and "\\" not in target:
        return target
    return url_for("dashboard.index")


def save_user(user: User, **changes: Any) -> User:
    """Write changes to a user, re-reading once if someone else wrote it meanwhile."""
    store = get_store()
    for _attempt in range(3):
        updated = dataclasses.replace(user, **changes)
        try:
            return store.update_user(updated)
        except ConflictError:
            user = store.get_user(user.username)
    raise ConflictError("user", user.username, user.version, "?")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    if request.method != "POST":
        return render_template("login.html", next=request.args.get("next", ""))
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    address = request.remote_addr or "?"
    if throttle().blocked(address):
        audit.record("login.throttled", "address", address, actor=username[:100] or "?")
        flash(_("Too many failed sign-ins from your address: wait a few minutes."), "error")
        return render_template("login.html", next=request.form.get("next", "")), 429
    store = get_store()
    try:
        user: User | None = store.get_user(username) if username else None
    except NotFoundError:
        user = None
    now = utcnow()
    if user is None:
        verify_password(_DUMMY_HASH, password)
        throttle().failed(address)
        audit.record("login.failed", "user", username[:100], actor=username[:100] or "?")
        return _login_refused()
    if user.locked_until and user.locked_until > now:
        audit.record("login.locked", "user", user.username, actor=user.username)
        return _login_refused(locked=True)
    if user.disabled or not verify_password(user.password_hash, password):
        throttle().failed(address)
        failed = user.failed_logins + 1
        locked = now + LOCKOUT if failed >= MAX_FAILED_LOGINS else None
        save_user(user, failed_logins=0 if locked else failed, locked_until=locked)
        audit.record("login.failed", "user", user.username, actor=user.username,
                     after={"failed_logins": failed, "locked_until": locked})
        return _login_refused(locked=locked is not None)
    user = save_user(user, failed_logins=0, locked_until=None, last_login=now)
    session.clear()
    session["_stamp"] = ConsoleUser.stamp_of(user)
    session.permanent = True
    login_user(ConsoleUser(user))
    audit.record("login", "user", user.username)
    return redirect(safe_next(request.form.get("next")))


def _login_refused(locked: bool = False) -> Any:
    message = _("Too many failed sign-ins: the account is locked for a while.") if locked \
        else _("Wrong user name or password.")
    flash(message, "error")
    return render_template("login.html", next=request.form.get("next", "")), 401


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    audit.record("logout", "user", current_user.username)
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))


@bp.route("/language", methods=["POST"])
def set_language() -> Any:
    """Switch the interface language; kept on the user record when signed in."""
    language = request.form.get("language", "")
    if language not in LANGUAGES:
        abort(400)
    session["language"] = language
    if current_user.is_authenticated and current_user.record.language != language:
        before = current_user.record
        after = save_user(before, language=language)
        audit.record("user.language", "user", after.username, {"language": before.language},
                     {"language": language})
    return redirect(safe_next(request.form.get("next")))


@bp.route("/account", methods=["GET"])
def account() -> Any:
    tokens = get_store().list_api_tokens(current_user.username)
    return render_template("account.html", tokens=tokens, new_token=session.pop("new_token", None))


@bp.route("/account/preferences", methods=["POST"])
def preferences() -> Any:
    user = current_user.record
    language = request.form.get("language", user.language)
    zone = request.form.get("timezone", user.timezone).strip()
    if language not in LANGUAGES or not valid_timezone(zone):
        flash(_("Unknown language or time zone."), "error")
        return redirect(url_for("auth.account"), 303)
    save_user(user, language=language, timezone=zone)
    audit.record("user.preferences", "user", user.username,
                 {"language": user.language, "timezone": user.timezone},
                 {"language": language, "timezone": zone})
    session["language"] = language
    flash(_("Preferences saved."), "ok")
    return redirect(url_for("auth.account"), 303)


@bp.route("/account/password", methods=["POST"])
def change_password() -> Any:
    user = current_user.record
    if not verify_password(user.password_hash, request.form.get("current", "")):
        flash(_("The current password is wrong."), "error")
        return redirect(url_for("auth.account"), 303)
    new = request.form.get("new", "")
    problem = password_problem(new)
    if problem or new != request.form.get("confirm", ""):
        flash(_("The new password is too short or the two entries differ."), "error")
        return redirect(url_for("auth.account"), 303)
    updated = save_user(user, password_hash=hash_password(new))
    session["_stamp"] = ConsoleUser.stamp_of(updated)
    audit.record("user.password", "user", user.username)
    flash(_("Password changed."), "ok")
    return redirect(url_for("auth.account"), 303)


@bp.route("/account/tokens", methods=["POST"])
@requires(Permission.TOKENS_OWN)
def create_token() -> Any:
    name = request.form.get("name", "").strip()[:100] or "api"
    try:
        days = int(request.form.get("days", "90"))
    except ValueError:
        days = 90
    days = max(1, min(days, 3650))
    secret = new_token_secret()
    now = utcnow()
    token = get_store().add_api_token(ApiToken(
        id=secrets.token_hex(8), username=current_user.username, name=name,
        token_hash=token_hash(secret), created_at=now, expires_at=now + timedelta(days=days)))
    audit.record("token.create", "api_token", token.id, after=token)
    # shown once on the next page, never stored
    session["new_token"] = secret
    return redirect(url_for("auth.account"), 303)


@bp.route("/account/tokens/<token_id>/revoke", methods=["POST"])
@requires(Permission.TOKENS_OWN)
def revoke_token(token_id: str) -> Any:
    store = get_store()
    mine = {t.id: t for t in store.list_api_tokens(current_user.username)}
    if token_id not in mine:
        abort(404)
    store.revoke_api_token(token_id)
    audit.record("token.revoke", "api_token", token_id, before=mine[token_id])
    return redirect(url_for("auth.account"), 303)
