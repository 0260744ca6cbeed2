"""Retention of event indices: ILM on Elasticsearch, ISM on OpenSearch, and a sweeper.

Event indices are named by the period of their events' ``@timestamp``
(``P-events-<dataset>-YYYY[.MM[.DD]]``), so an index whose whole period is older than
``store.retention_days`` can go as a whole — no delete-by-query, no scripts.

- :func:`install_policy` installs a lifecycle policy that deletes an event index
  ``retention_days`` after its creation (ILM policy ``P-retention`` referenced by the
  event template on Elasticsearch; ISM policy ``P-retention`` with an
  ``ism_template`` on OpenSearch). When the cluster has no lifecycle API (a bare
  Elasticsearch node without x-pack ILM; OpenSearch without the index-management
  plugin) it logs why and returns no settings.
- :func:`sweep_expired` deletes event indices whose period ended more than
  ``retention_days`` ago. It covers what a creation-age policy cannot: backfilled
  history (an index created today for events of last year) and clusters without a
  lifecycle API. The store runs it when it opens and the CLI may run it daily.
"""

from __future__ import annotations

import calendar
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from store.elastic.client import ClusterError, SearchClient, quote_id

log = logging.getLogger("govsoc.store.elastic")

_PERIOD = re.compile(r"-(\d{4})(?:\.(\d{2})(?:\.(\d{2}))?)?$")


def policy_name(prefix: str) -> str:
    return f"{prefix}-retention"


def install_policy(client: SearchClient, prefix: str, retention_days: int) -> dict[str, Any]:
    """Install the delete-after policy; returns settings for the event template."""
    name = policy_name(prefix)
    try:
        if client.engine == "elasticsearch":
            client.request("PUT", f"/_ilm/policy/{quote_id(name)}", {"policy": {
                "_meta": {"managed_by": "govsoc"},
                "phases": {"hot": {"actions": {}},
                           "delete": {"min_age": f"{retention_days}d",
                                      "actions": {"delete": {}}}}}})
            return {"index.lifecycle.name": name}
        body = {"policy": {
            "description": f"govsoc: delete event indices after {retention_days} days",
            "default_state": "hot",
            "states": [
                {"name": "hot", "actions": [], "transitions": [
                    {"state_name": "delete",
                     "conditions": {"min_index_age": f"{retention_days}d"}}]},
                {"name": "delete", "actions": [{"delete": {}}], "transitions": []}],
            "ism_template": [{"index_patterns": [f"{prefix}-events-*"], "priority": 100}]}}
        path = f"/_plugins/_ism/policies/{quote_id(name)}"
        current = client.get_or_none(path)
        if current is not None:
            client.request("PUT", path, body, params={
                "if_seq_no": current["_seq_no"], "if_primary_term": current["_primary_term"]})
        else:
            client.request("PUT", path, body)
        return {}
    except ClusterError as exc:
        if exc.status in (400, 404, 405) and ("no handler" in exc.reason.lower()
                                              or "incorrect http method" in exc.reason.lower()
                                              or exc.status == 405):
            api = "ILM" if client.engine == "elasticsearch" else "ISM (index-management plugin)"
            log.warning("the %s cluster has no %s API (%s); event indices older than %d days "
                        "are deleted by govsoc's own retention sweep instead",
                        client.engine, api, exc.reason, retention_days)
            return {}
        raise


def remove_policy(client: SearchClient, prefix: str) -> None:
    name = policy_name(prefix)
    path = (f"/_ilm/policy/{quote_id(name)}" if client.engine == "elasticsearch"
            else f"/_plugins/_ism/policies/{quote_id(name)}")
    try:
        client.request("DELETE", path)
    except ClusterError as exc:
        if exc.status not in (400, 404, 405):
            raise


def period_end(index: str) -> datetime | None:
    """End of the period an event index covers, from its name."""
    match = _PERIOD.search(index)
    if not match:
        return None
    year = int(match.group(1))
    if match.group(2) is None:
        return datetime(year + 1, 1, 1, tzinfo=UTC)
    month, day = int(match.group(2)), match.group(3)
    if not 1 <= month <= 12:
        return None
    if day is not None:
        try:
            return datetime(year, month, int(day), tzinfo=UTC) + timedelta(days=1)
        except ValueError:
            return None
    last = calendar.monthrange(year, month)[1]
    return datetime(year, month, last, tzinfo=UTC) + timedelta(days=1)


def expired_indices(names: list[str], retention_days: int, now: datetime) -> list[str]:
    cutoff = now - timedelta(days=retention_days)
    out = []
    for name in names:
        end = period_end(name)
        if end is not None and end <= cutoff:
            out.append(name)
    return sorted(out)


def sweep_expired(client: SearchClient, prefix: str, retention_days: int,
                  now: datetime | None = None) -> list[str]:
    """Delete event indices past retention; returns their names."""
    listing = client.request("GET", f"/_cat/indices/{quote_id(prefix)}-events-*",
                             params={"format": "json", "h": "index"})
    names = [row["index"] for row in listing or []]
    doomed = expired_indices(names, retention_days, now or datetime.now(UTC))
    for start in range(0, len(doomed), 50):
        chunk = doomed[start:start + 50]
        client.request("DELETE", "/" + ",".join(quote_id(n) for n in chunk))
        log.info("retention: deleted %d event indices older than %d days: %s",
                 len(chunk), retention_days, ", ".join(chunk))
    return doomed
