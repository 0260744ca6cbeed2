"""Who may do what: the permissions of the console and the role that grants each.

Every view and every API endpoint names one permission (``@requires(...)``); the
matrix below is the one place that says which role holds it. Areas added later
(playbooks, reports) add their permissions here.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from functools import wraps
from typing import Any, TypeVar

from flask import abort, g
from flask_login import current_user

from store.base import Role

F = TypeVar("F", bound=Callable[..., Any])


class Permission(StrEnum):
    DASHBOARD_VIEW = "dashboard.view"
    ALERTS_VIEW = "alerts.view"
    #: status, assignment, comments, severity override
    ALERTS_TRIAGE = "alerts.triage"
    #: "suppress similar": an exception the detection engine honours
    ALERTS_SUPPRESS = "alerts.suppress"
    CASES_VIEW = "cases.view"
    CASES_EDIT = "cases.edit"
    EVENTS_SEARCH = "events.search"
    RULES_VIEW = "rules.view"
    RULES_EDIT = "rules.edit"
    USERS_MANAGE = "users.manage"
    AUDIT_VIEW = "audit.view"
    DEADLETTERS_VIEW = "deadletters.view"
    #: create and revoke one's own API tokens
    TOKENS_OWN = "tokens.own"
    PLAYBOOKS_RUN = "playbooks.run"
    REPORTS_VIEW = "reports.view"
    #: the service's inputs, queues and checkpoints (the sensors page)
    SENSORS_VIEW = "sensors.view"


_ANALYST = {
    Permission.DASHBOARD_VIEW, Permission.ALERTS_VIEW, Permission.ALERTS_TRIAGE,
    Permission.ALERTS_SUPPRESS, Permission.CASES_VIEW, Permission.CASES_EDIT,
    Permission.EVENTS_SEARCH, Permission.RULES_VIEW, Permission.TOKENS_OWN,
    Permission.PLAYBOOKS_RUN,
}
_DETECTION_ENGINEER = {
    Permission.DASHBOARD_VIEW, Permission.ALERTS_VIEW, Permission.ALERTS_TRIAGE,
    Permission.ALERTS_SUPPRESS, Permission.CASES_VIEW, Permission.EVENTS_SEARCH,
    Permission.RULES_VIEW, Permission.RULES_EDIT, Permission.DEADLETTERS_VIEW,
    Permission.TOKENS_OWN, Permission.SENSORS_VIEW,
}
# managers read everything operational and the audit trail, and change nothing in triage
_MANAGER = {
    Permission.DASHBOARD_VIEW, Permission.ALERTS_VIEW, Permission.CASES_VIEW,
    Permission.EVENTS_SEARCH, Permission.RULES_VIEW, Permission.AUDIT_VIEW,
    Permission.REPORTS_VIEW, Permission.TOKENS_OWN, Permission.SENSORS_VIEW,
}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.ANALYST: frozenset(_ANALYST),
    Role.DETECTION_ENGINEER: frozenset(_DETECTION_ENGINEER),
    Role.MANAGER: frozenset(_MANAGER),
    Role.ADMIN: frozenset(Permission),
}


def role_has(role: Role | str, permission: Permission | str) -> bool:
    try:
        return Permission(permission) in ROLE_PERMISSIONS[Role(role)]
    except ValueError:
        return False


def can(permission: Permission | str) -> bool:
    """Whether the person making this request (session or API token) holds ``permission``."""
    principal = getattr(g, "api_user", None)
    if principal is None:
        if not current_user.is_authenticated:
            return False
        principal = current_user.record
    return role_has(principal.role, permission)


def requires(permission: Permission) -> Callable[[F], F]:
    """Refuse the view with 403 unless the signed-in user holds ``permission``.

    Login itself is enforced for every console view by the app (see ``console.app``);
    an anonymous request never reaches this check.
    """
    def decorate(view: F) -> F:
        view.required_permission = permission  # type: ignore[attr-defined]

        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not can(permission):
                abort(403)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
