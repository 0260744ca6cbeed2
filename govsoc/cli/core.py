"""``govsoc init``, ``govsoc config check|show`` and ``govsoc deadletters list``."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from govsoc.cli.common import emit, format_option, pass_app
from govsoc.config import default_config_text
from govsoc.errors import ConflictError
from govsoc.passwords import hash_password, password_problem


@click.command()
@click.option("--admin", "admin_name", default="admin", show_default=True,
              help="Name of the first administrator.")
@click.option("--password-stdin", is_flag=True,
              help="Read the administrator's password from standard input (no prompt).")
@pass_app
def init(app, admin_name: str, password_stdin: bool) -> None:
    """Create the data directory, the store and the first administrator."""
    from store.base import Role, User

    config = app.config
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = app.store
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt(f"password for {admin_name}", hide_input=True,
                                confirmation_prompt=True)
    problem = password_problem(password)
    if problem:
        raise click.UsageError(problem)
    try:
        store.create_user(User(username=admin_name, password_hash=hash_password(password),
                               role=Role.ADMIN, created_at=datetime.now(UTC),
                               display_name=admin_name))
    except ConflictError:
        click.echo(f"user {admin_name} already exists; left unchanged")
    click.echo(f"data directory: {config.data_dir.resolve()}")
    click.echo(f"store: {store.engine} (schema version {store.schema_version()})")


@click.group()
def config() -> None:
    """Check or show the configuration."""


@config.command("check")
@pass_app
def config_check(app) -> None:
    """Validate the configuration; names the bad key and why."""
    cfg = app.config
    source = cfg.source or "defaults (no configuration file)"
    click.echo(f"configuration OK: {source}")
    for name in sorted(cfg.env_overrides):
        click.echo(f"  overridden by environment: {name}")
    click.echo(f"  data_dir: {cfg.data_dir}")
    click.echo(f"  store.engine: {cfg.store_engine}")


@config.command("show")
@click.option("--defaults", is_flag=True, help="Show the built-in defaults instead.")
@pass_app
def config_show(app, defaults: bool) -> None:
    """Print the effective configuration as YAML."""
    import yaml

    if defaults:
        click.echo(default_config_text(), nl=False)
        return
    shown = dict(app.config.values)
    store = dict(shown.get("store", {}))
    for secret in ("password", "api_key"):
        if store.get(secret):
            store[secret] = "********"
    shown["store"] = store
    click.echo(yaml.safe_dump(shown, sort_keys=False, allow_unicode=True), nl=False)


@click.group()
def deadletters() -> None:
    """Records that could not be accepted, with their reasons."""


@deadletters.command("list")
@click.option("--limit", default=50, show_default=True)
@click.option("--source", default=None, help="Only dead letters from this file or sender.")
@format_option()
@pass_app
def deadletters_list(app, limit: int, source: str | None, fmt: str) -> None:
    """List dead letters, newest first."""
    page = app.store.list_dead_letters(limit=limit, source=source)
    rows = [{"id": d.id, "received": d.letter.received.isoformat(),
             "source": d.letter.source, "position": d.letter.position,
             "reason": d.letter.reason,
             "original": d.letter.original[:2000].decode("utf-8", "backslashreplace")}
            for d in page.items]
    emit(rows, fmt, ["received", "source", "position", "reason"])


COMMANDS = [init, config, deadletters]
