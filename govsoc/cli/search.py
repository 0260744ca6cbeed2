"""``govsoc search``: find stored events."""

from __future__ import annotations

import click

from govsoc.cli.common import emit, format_option, parse_since, pass_app

DEFAULT_COLUMNS = ["@timestamp", "event.dataset", "host.name", "source.ip", "destination.ip",
                   "user.name", "event.action", "message"]


def _filters(values: tuple[str, ...]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{item!r}: use FIELD=VALUE", param_hint="--field")
        out.setdefault(name.strip(), []).append(value)
    return out


@click.command()
@click.option("--dataset", "datasets", multiple=True, help="Only this dataset (repeatable).")
@click.option("--query", "-q", "text", default=None, help="Free text to search for.")
@click.option("--field", "-f", "fields", multiple=True, metavar="FIELD=VALUE",
              help="Exact field value (repeatable; same field twice means either).")
@click.option("--since", default=None, help="Start: 7d, 24h, 30m or an ISO 8601 time.")
@click.option("--until", default=None, help="End: an ISO 8601 time or a duration ago.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 100000))
@click.option("--oldest-first", is_flag=True, help="Oldest events first.")
@click.option("--columns", default=None, help="Comma-separated fields for table/csv.")
@format_option()
@pass_app
def search(app, datasets, text, fields, since, until, limit, oldest_first, columns, fmt) -> None:
    """Search stored events. JSON lines output is one ECS event per line."""
    from store.base import EventQuery

    query = EventQuery(
        start=parse_since(since) if since else None,
        end=parse_since(until) if until else None,
        datasets=list(datasets), filters=_filters(fields), text=text,
        limit=min(limit, 1000), descending=not oldest_first)
    store = app.store

    def rows():
        remaining = limit
        page_query = query
        while remaining > 0:
            page = store.search_events(page_query)
            yield from page.items[:remaining]
            remaining -= len(page.items)
            if not page.next_cursor:
                return
            page_query = EventQuery(**{**query.__dict__, "after": page.next_cursor,
                                       "limit": min(remaining, 1000)})

    cols = [c.strip() for c in columns.split(",")] if columns else DEFAULT_COLUMNS
    emit(rows(), fmt, cols)


COMMANDS = [search]
