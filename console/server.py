"""Serving the console with a production WSGI server (waitress)."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("govsoc.console")


def serve(app: Any, host: str, port: int, threads: int = 8) -> None:
    """Serve ``app`` until interrupted. ``govsoc console`` and ``govsoc run`` call this."""
    from waitress import serve as waitress_serve

    log.info("console listening on http://%s:%d/", host, port)
    waitress_serve(app, host=host, port=port, threads=threads, ident="govsoc",
                   clear_untrusted_proxy_headers=True, channel_timeout=120,
                   max_request_body_size=8 * 1024 * 1024)
