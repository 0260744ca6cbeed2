"""``govsoc demo``: a provincial data centre under attack, run through the real service."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path

import click

from govsoc.cli.common import pass_app

FIRST_LOOKS = """
What to look at first:
  1. Alerts (Cảnh báo): the queue, newest first. Open "Webshell Execution" — the
     portal's IIS worker ran cmd.exe /c whoami; the event, the rule and related
     events (same host, same minutes) are on one page.
  2. Cases (Vụ việc): playbooks opened cases from the high alerts; open one to see
     the checklist, the observables and the national incident report.
  3. Dashboard: alerts over the four hours of the scenario, by severity and rule.
"""


@click.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False), default=None,
              help="Where the demo data centre lives (default: DATA_DIR/demo).")
@click.option("--port", type=int, default=8080, show_default=True, help="Console port.")
@click.option("--no-serve", is_flag=True, help="Run the scenario, report, and exit.")
@pass_app
def demo(app, directory: str | None, port: int, no_serve: bool) -> int:
    """Build the attack scenario, deliver it to a running govsoc service over syslog,
    tailed logs, drop folders and a watched web root, then open the console."""
    from govsoc.demo.runner import run_demo
    from govsoc.errors import NotFoundError
    from govsoc.passwords import hash_password
    from store.base import Role, User

    root = Path(directory) if directory else app.config.data_dir / "demo"
    result = run_demo(root, console_port=port, serve=not no_serve, progress=click.echo)
    click.echo(f"\nstored {result.events:,} events; {len(result.alerts)} alerts; "
               f"{result.cases} cases opened by playbooks")
    by_rule: dict[tuple[str, str], int] = {}
    for alert in result.alerts:
        key = (alert.severity.value, alert.rule_name)
        by_rule[key] = by_rule.get(key, 0) + alert.count
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3, "informational": 4}
    for (severity, name), count in sorted(by_rule.items(), key=lambda x: (order[x[0][0]],
                                                                            x[0][1])):
        click.echo(f"  {severity:<9} {count:>4}  {name}")
    if result.missing:
        click.secho("stages without their alert: " + "; ".join(result.missing), fg="red")
    if result.background_noise:
        click.secho(f"{len(result.background_noise)} alerts above low from normal traffic",
                    fg="yellow")
    if no_serve:
        return 1 if result.missing else 0
    service = result.__dict__["service"]
    password = secrets.token_urlsafe(12)
    store = service.store
    try:
        user = store.get_user("demo")
        user.password_hash = hash_password(password)
        store.update_user(user)
    except NotFoundError:
        store.create_user(User("demo", hash_password(password), Role.ADMIN, datetime.now(UTC),
                               display_name="Demo", language="vi"))
    click.echo(f"\nconsole: http://127.0.0.1:{service.web_port}/   user: demo   "
               f"password: {password}")
    click.echo(FIRST_LOOKS)
    click.echo("Ctrl-C stops the service.")
    service.wait()
    return 0


COMMANDS = [demo]
