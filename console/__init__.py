"""The Flask console: triage, cases, rules, playbooks, reports, administration, API.

:func:`create_app` is the application factory. Each area is a blueprint in its own
module, listed in :data:`BLUEPRINT_MODULES`; an area added later (playbooks,
reports) adds its module name to that list and its permissions to
:mod:`console.permissions`. The console reads and writes only through the Store
contract (``store.base.Store``), so it runs unchanged on every engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask

    from govsoc.config import Config
    from store.base import Store

#: Blueprint modules, in registration order; each exposes ``bp`` (a Blueprint).
BLUEPRINT_MODULES: list[str] = [
    "console.auth",
    "console.dashboard",
    "console.alerts",
    "console.cases",
    "console.events",
    "console.rules",
    "console.admin",
    "console.api",
    "console.playbooks",
    "console.reports",
]


def create_app(config: Config, store: Store | None = None,
               overrides: dict[str, Any] | None = None) -> Flask:
    """Build the console for ``config``; ``store`` defaults to ``store.open_store(config)``.

    ``overrides`` are Flask settings applied last (tests use it for ``TESTING``).
    """
    from console.app import build_app

    app = build_app(config, store, overrides or {})
    for name in BLUEPRINT_MODULES:
        module = importlib.import_module(name)
        app.register_blueprint(module.bp)
    return app
