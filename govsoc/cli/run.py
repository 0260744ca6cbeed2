"""``govsoc run``: the supervised SOC service (inputs, detection, store, console)."""

from __future__ import annotations

import click

from govsoc.cli.common import pass_app


@click.command("run")
@click.option("--no-console", is_flag=True, help="Run inputs and detection only.")
@click.option("--port", type=int, default=None, help="Console port (default console.port).")
@pass_app
def run_command(app, no_console: bool, port: int | None) -> None:
    """Run every input of govsoc.yml through detection into the store, with the console,
    /healthz and /metrics; SIGTERM stops cleanly (inputs stop, queues drain)."""
    from govsoc.service import Service

    if port is not None:
        app.config.values["console"]["port"] = port
    service = Service(app.config, app.store, serve_console=not no_console)
    service.start()
    names = ", ".join(i.status.name for i in service.inputs) or "none (add inputs to govsoc.yml)"
    click.echo(f"inputs: {names}")
    if service.web_port:
        host = app.config.get("console.host")
        click.echo(f"console: http://{host}:{service.web_port}/  health: /healthz  "
                   f"metrics: /metrics")
    service.wait()
    stats = service.pipeline.stats
    click.echo(f"stopped: stored {stats.stored:,}, duplicates {stats.duplicates:,}, "
               f"rejected {stats.rejected:,}, alerts {stats.alerts_created:,} new")


COMMANDS = [run_command]
