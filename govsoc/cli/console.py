"""``govsoc console`` (serve the web console) and ``govsoc users`` (manage console users)."""

from __future__ import annotations

import dataclasses
import getpass
import sys
from datetime import UTC, datetime

import click

from govsoc.cli.common import emit, format_option, pass_app
from govsoc.errors import ConflictError, NotFoundError
from govsoc.passwords import hash_password, password_problem

ROLES = ("analyst", "detection_engineer", "manager", "admin")


@click.command("console")
@click.option("--host", default=None, help="Address to listen on (default console.host).")
@click.option("--port", type=int, default=None, help="Port (default console.port).")
@pass_app
def console_command(app, host: str | None, port: int | None) -> None:
    """Serve the web console (waitress, a production WSGI server)."""
    from console import create_app
    from console.server import serve

    section = app.config.section("console")
    web = create_app(app.config, app.store)
    listen_host = host or section.get("host", "127.0.0.1")
    listen_port = port or int(section.get("port", 8080))
    click.echo(f"govsoc console on http://{listen_host}:{listen_port}/ (Ctrl-C stops)")
    serve(web, listen_host, listen_port, int(section.get("threads", 8)))


def _audit(store, action: str, username: str, before=None, after=None) -> None:
    from console.audit import snapshot
    from store.base import AuditEntry

    store.append_audit(AuditEntry(actor=f"cli:{getpass.getuser()}", action=action,
                                  target_type="user", target_id=username,
                                  at=datetime.now(UTC), before=snapshot(before),
                                  after=snapshot(after)))


def _read_password(password_stdin: bool, name: str) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt(f"password for {name}", hide_input=True, confirmation_prompt=True)


@click.group("users")
def users() -> None:
    """Console users and their roles."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--password-stdin", is_flag=True,
              help="Read the password from standard input (no prompt).")
@click.option("--display-name", default="", help="Full name shown in the console.")
@click.option("--language", type=click.Choice(["vi", "en"]), default="vi", show_default=True)
@pass_app
def users_add(app, name: str, role: str, password_stdin: bool, display_name: str,
              language: str) -> None:
    """Add a user."""
    from store.base import Role, User

    password = _read_password(password_stdin, name)
    problem = password_problem(password)
    if problem:
        raise click.UsageError(problem)
    user = User(username=name, password_hash=hash_password(password), role=Role(role),
                created_at=datetime.now(UTC), display_name=display_name, language=language)
    try:
        created = app.store.create_user(user)
    except ConflictError:
        raise click.ClickException(f"user {name} already exists") from None
    _audit(app.store, "user.create", name, after=created)
    click.echo(f"user {name} added with role {role}")


@users.command("list")
@format_option(("table", "jsonl", "csv"))
@pass_app
def users_list(app, fmt: str) -> None:
    """List users."""
    rows = [{"user": {"name": u.username, "full_name": u.display_name, "roles": [str(u.role)]},
             "role": str(u.role), "language": u.language, "timezone": u.timezone,
             "disabled": u.disabled,
             "last_login": u.last_login.isoformat() if u.last_login else None}
            for u in app.store.list_users()]
    emit(rows, fmt, ["user.name", "role", "language", "disabled", "last_login"],
         ["name", "role", "language", "disabled", "last_login"])


def _change(app, name: str, action: str, **changes) -> None:
    store = app.store
    try:
        user = store.get_user(name)
    except NotFoundError:
        raise click.ClickException(f"no user named {name}") from None
    updated = store.update_user(dataclasses.replace(user, **changes))
    _audit(store, action, name, before=user, after=updated)


@users.command("set-role")
@click.argument("name")
@click.argument("role", type=click.Choice(ROLES))
@pass_app
def users_set_role(app, name: str, role: str) -> None:
    """Change a user's role."""
    from store.base import Role

    _change(app, name, "user.role", role=Role(role))
    click.echo(f"user {name} now has role {role}")


@users.command("disable")
@click.argument("name")
@pass_app
def users_disable(app, name: str) -> None:
    """Disable a user (their sessions and API tokens stop working)."""
    _change(app, name, "user.disable", disabled=True)
    click.echo(f"user {name} disabled")


@users.command("enable")
@click.argument("name")
@pass_app
def users_enable(app, name: str) -> None:
    """Enable a disabled user and clear a lockout."""
    _change(app, name, "user.enable", disabled=False, failed_logins=0, locked_until=None)
    click.echo(f"user {name} enabled")


@users.command("set-password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from standard input (no prompt).")
@pass_app
def users_set_password(app, name: str, password_stdin: bool) -> None:
    """Set a user's password."""
    password = _read_password(password_stdin, name)
    problem = password_problem(password)
    if problem:
        raise click.UsageError(problem)
    _change(app, name, "user.password", password_hash=hash_password(password))
    click.echo(f"password of {name} changed")


COMMANDS = [console_command, users]
