"""The console application itself: settings, sessions, CSRF, language, security headers.

Blueprints are registered by :func:`console.create_app`; this module builds the
Flask object they attach to and owns what every request shares.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, render_template, request, session
from flask_babel import Babel
from flask_babel import lazy_gettext as _l
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from console import i18n, presentation
from console.permissions import Permission, can
from console.principal import ConsoleUser
from govsoc.config import Config
from govsoc.errors import NotFoundError
from store.base import Store

HERE = Path(__file__).resolve().parent

#: Content-Security-Policy: no inline script or style, nothing from other origins
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "frame-ancestors 'none'; form-action 'self'")

SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}

#: endpoints reachable without a console session (the API checks its own tokens)
PUBLIC_ENDPOINTS = {"auth.login", "auth.set_language", "static", "health"}

csrf = CSRFProtect()
login_manager = LoginManager()


def get_store() -> Store:
    """The store of the running console."""
    from flask import current_app

    return current_app.extensions["govsoc.store"]


def get_config() -> Config:
    from flask import current_app

    return current_app.extensions["govsoc.config"]


def _secret_key(config: Config) -> str:
    """The configured key, or one generated once and kept in the data dir (mode 0600)."""
    configured = config.get("console.secret_key")
    if configured:
        return str(configured)
    path = config.data_path("console-secret.key")
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(key)
    return key


def build_app(config: Config, store: Store | None, overrides: dict[str, Any]) -> Flask:
    if store is None:
        from store import open_store

        store = open_store(config)
    console = config.section("console")
    app = Flask("console", root_path=str(HERE), static_folder="static",
                template_folder="templates")
    app.config.update(
        SECRET_KEY=_secret_key(config),
        SESSION_COOKIE_NAME="govsoc_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=bool(console.get("secure_cookies")),
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SECURE=bool(console.get("secure_cookies")),
        PERMANENT_SESSION_LIFETIME=8 * 3600,
        MAX_CONTENT_LENGTH=4 * 1024 * 1024,
        WTF_CSRF_TIME_LIMIT=8 * 3600,
        BABEL_DEFAULT_LOCALE=console.get("default_language") or "vi",
        BABEL_DEFAULT_TIMEZONE=console.get("timezone") or "Asia/Ho_Chi_Minh",
        BABEL_TRANSLATION_DIRECTORIES=str(HERE / "translations"),
        JSON_SORT_KEYS=False,
    )
    app.config.update(overrides)
    # both engines are safe to share between the WSGI server's threads (the SQLite
    # engine opens one connection per thread)
    app.extensions["govsoc.store"] = store
    app.extensions["govsoc.config"] = config
    app.jinja_env.autoescape = True  # every template, whatever its extension
    app.jinja_env.trim_blocks = True
    app.jinja_env.lstrip_blocks = True

    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.session_protection = "strong"
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please sign in to see this page.")
    login_manager.login_message_category = "info"
    Babel(app, locale_selector=i18n.select_locale, timezone_selector=i18n.select_timezone)
    i18n.install_filters(app)
    presentation.install_filters(app)

    @login_manager.user_loader
    def load_user(username: str) -> ConsoleUser | None:
        try:
            record = get_store().get_user(username)
        except NotFoundError:
            return None
        if record.disabled:
            return None
        # a session issued before a password change or a role change is void
        if session.get("_stamp") != ConsoleUser.stamp_of(record):
            return None
        return ConsoleUser(record)

    @app.before_request
    def require_login() -> Any:
        endpoint = request.endpoint or ""
        if endpoint in PUBLIC_ENDPOINTS or endpoint.startswith("api."):
            return None
        if not current_user.is_authenticated:
            return login_manager.unauthorized()
        return None

    @app.after_request
    def security_headers(response: Any) -> Any:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.endpoint != "static":
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.context_processor
    def template_helpers() -> dict[str, Any]:
        return {"can": can, "Permission": Permission, "nav_items": _nav_items(app),
                "languages": i18n.LANGUAGES, "current_language": i18n.current_language(),
                "config_endpoints": set(app.view_functions)}

    @app.route("/healthz")
    def health() -> Any:
        return jsonify(status="ok")

    @app.errorhandler(CSRFError)
    def csrf_failed(error: CSRFError) -> Any:
        return _error_page(400, error.description)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Any:
        return _error_page(error.code or 500, error.description or "")

    @app.errorhandler(NotFoundError)
    def not_found(error: NotFoundError) -> Any:
        return _error_page(404, str(error))

    return app


def _error_page(code: int, message: str) -> Any:
    if request.path.startswith("/api/"):
        return jsonify(error=message, status=code), code
    return render_template("error.html", code=code, message=message), code


#: (endpoint, label, permission): the main navigation; entries whose blueprint is
#: not registered are left out, so later areas appear when they land
NAV: list[tuple[str, Any, Permission]] = [
    ("dashboard.index", _l("Dashboard"), Permission.DASHBOARD_VIEW),
    ("alerts.queue", _l("Alerts"), Permission.ALERTS_VIEW),
    ("cases.index", _l("Cases"), Permission.CASES_VIEW),
    ("events.search", _l("Events"), Permission.EVENTS_SEARCH),
    ("rules.index", _l("Rules"), Permission.RULES_VIEW),
    ("playbooks.index", _l("Playbooks"), Permission.PLAYBOOKS_RUN),
    ("reports.index", _l("Reports"), Permission.REPORTS_VIEW),
    ("admin.users", _l("Users"), Permission.USERS_MANAGE),
    ("admin.audit_log", _l("Audit log"), Permission.AUDIT_VIEW),
    ("admin.dead_letters", _l("Dead letters"), Permission.DEADLETTERS_VIEW),
    ("admin.sensors", _l("Sensors"), Permission.SENSORS_VIEW),
]


def _nav_items(app: Flask) -> list[tuple[str, Any]]:
    if not current_user.is_authenticated:
        return []
    endpoints = set(app.view_functions)
    return [(endpoint, label) for endpoint, label, permission in NAV
            if endpoint in endpoints and can(permission)]
