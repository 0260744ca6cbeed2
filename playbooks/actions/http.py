"""Posting JSON to webhooks and HTTP APIs, with timeouts and clear errors."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from typing import Any

from govsoc.errors import ActionError

_RESPONSE_CAP = 64 * 1024


def post_json(action: str, url: str, payload: Any, *, timeout: float,
              headers: dict[str, str] | None = None, idempotency_key: str | None = None,
              verify_tls: bool = True) -> dict[str, Any]:
    """POST ``payload`` as JSON; return status and (capped) body.

    Connection failures, timeouts and 5xx/429 answers are retryable; other 4xx
    answers are not (the request itself is wrong).
    """
    if not url.startswith(("http://", "https://")):
        raise ActionError(action, f"refusing a non-HTTP URL {url!r}")
    body = json.dumps(payload, ensure_ascii=False, default=str).encode("utf-8")
    request = urllib.request.Request(url, data=body, method="POST")  # noqa: S310
    request.add_header("Content-Type", "application/json; charset=utf-8")
    request.add_header("User-Agent", "govsoc-playbooks/1")
    if idempotency_key:
        request.add_header("Idempotency-Key", idempotency_key)
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    context = None
    if url.startswith("https://") and not verify_tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(request, timeout=timeout,  # noqa: S310
                                    context=context) as response:
            text = response.read(_RESPONSE_CAP).decode("utf-8", "replace")
            return {"status": response.status, "body": text}
    except urllib.error.HTTPError as exc:
        detail = exc.read(2048).decode("utf-8", "replace") if exc.fp else ""
        retryable = exc.code >= 500 or exc.code == 429
        raise ActionError(action, f"{url} answered HTTP {exc.code} {exc.reason}: "
                          f"{detail[:300]}", retryable=retryable) from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise ActionError(action, f"{url} timed out after {round(timeout, 1):g}s",
                              retryable=True) from None
        raise ActionError(action, f"cannot reach {url}: {exc.reason}", retryable=True) from None
    except TimeoutError:
        raise ActionError(action, f"{url} timed out after {round(timeout, 1):g}s",
                          retryable=True) from None
    except OSError as exc:
        raise ActionError(action, f"cannot reach {url}: {exc}", retryable=True) from None
