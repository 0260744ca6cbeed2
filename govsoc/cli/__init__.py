"""The ``govsoc`` command: the composition root of the command line.

The command is a package with one module per command group, because a single
file holding every subcommand of every component would not stay readable. Each
module defines its click commands; this module adds them to the root group.
Only this package and :mod:`govsoc.pipeline` import the components.
"""

from __future__ import annotations

import sys

import click

from govsoc.cli.common import AppContext, fail
from govsoc.errors import GovsocError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              envvar="GOVSOC_CONFIG", help="Configuration file (default ./govsoc.yml if present).")
@click.option("--data-dir", type=click.Path(file_okay=False),
              help="Data directory (overrides data_dir; default ./govsoc-data).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default=None,
              help="Log format (overrides log.format).")
@click.option("-v", "--verbose", is_flag=True, help="Log at debug level.")
@click.version_option(package_name="govsoc")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, data_dir: str | None,
        log_format: str | None, verbose: bool) -> None:
    """govsoc — security monitoring and incident response for government networks."""
    ctx.obj = AppContext(config_path=config_path, data_dir=data_dir, log_format=log_format,
                         verbose=verbose)
    ctx.call_on_close(ctx.obj.close)


def _register() -> None:
    from govsoc.cli import alerts, core, demo, ingest, run, search

    for module in (core, ingest, search, alerts, demo, run):
        for command in module.COMMANDS:
            cli.add_command(command)
    _register_optional()


def _register_optional() -> None:
    """Command groups of components; each module lists its commands in COMMANDS."""
    import importlib

    for name in OPTIONAL_MODULES:
        module = importlib.import_module(f"govsoc.cli.{name}")
        for command in module.COMMANDS:
            if isinstance(command, tuple):  # (parent group name, command)
                parent = cli.commands[command[0]]
                assert isinstance(parent, click.Group)
                parent.add_command(command[1])
            else:
                cli.add_command(command)


#: Command modules of the components, added as each component lands.
OPTIONAL_MODULES: list[str] = ["yara", "console", "logs", "playbooks", "report", "windows",
                                "network", "sigma"]

_register()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``govsoc`` console script."""
    try:
        result = cli.main(args=argv, prog_name="govsoc", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except GovsocError as exc:
        fail(str(exc))
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return result if isinstance(result, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
