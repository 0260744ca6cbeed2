"""``govsoc demo``: a first look at govsoc on the embedded store."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from importlib.resources import files

import click

from govsoc.cli.common import emit, pass_app


def sample_events_path() -> str:
    return str(files("govsoc") / "data" / "sample-events.jsonl")


@click.command()
@pass_app
def demo(app) -> int:
    """Ingest the bundled sample into the data dir and show what was found."""
    from collectors.jsonl import read_jsonl
    from govsoc.cli.ingest import run_ingest
    from govsoc.errors import NotFoundError
    from govsoc.passwords import hash_password
    from store.base import EventQuery, Role, User

    store = app.store
    password = None
    try:
        store.get_user("demo")
    except NotFoundError:
        password = secrets.token_urlsafe(12)
        store.create_user(User("demo", hash_password(password), Role.ADMIN,
                               datetime.now(UTC), display_name="Demo"))
    click.echo(f"data directory: {app.config.data_dir.resolve()}")
    status = run_ingest(app, "sample", read_jsonl(sample_events_path()))
    click.echo("\nevents by dataset:")
    for term in store.top_terms("event.dataset"):
        click.echo(f"  {term.value:<16} {term.count:>6}")
    click.echo("\ntop sources of failed SSH logins:")
    query = EventQuery(datasets=["system.auth"], filters={"event.outcome": ["failure"]})
    for term in store.top_terms("source.ip", query, size=3):
        click.echo(f"  {term.value:<16} {term.count:>6}")
    click.echo("\nlatest events:")
    emit(store.search_events(EventQuery(limit=5)).items, "table",
         ["@timestamp", "event.dataset", "host.name", "source.ip", "event.action"])
    if password:
        click.echo(f"\nconsole user: demo  password: {password}")
    return status


COMMANDS = [demo]
