"""The `readykit` command line: each verb a Click command; errors are one line with the exit
code their class carries (readykit.errors: 1 verdict, 2 usage, 3 the environment)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from readykit.clitools import GateCommand, UserError, cli_error, for_gate
from readykit.errors import EXTRA_OF, MissingExtra, ReadykitError


class _Group(click.Group):
    """The one translator: readykit's own errors become one line on stderr with the exit code
    their class carries, never a traceback; a verb whose optional libraries are not installed
    names the extra that brings them. A GateCommand's usage errors take its own exit code."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:  # one line like every other error: no usage block
            raise self._for_verb(ctx, UserError(exc.format_message())) from exc
        except click.ClickException as exc:
            recoded = self._for_verb(ctx, exc)
            if recoded is exc:
                raise
            raise recoded from exc
        except ReadykitError as exc:
            raise self._for_verb(ctx, cli_error(exc)) from exc
        except ModuleNotFoundError as exc:
            extra = EXTRA_OF.get((exc.name or "").split(".")[0])
            if extra is None:
                raise
            verb = ctx.invoked_subcommand or "this command"
            missing = MissingExtra(
                f"readykit {verb} needs the {extra!r} extra: pip install 'readykit[{extra}]' "
                f"({exc.name} is missing)"
            )
            raise self._for_verb(ctx, cli_error(missing)) from exc

    def _for_verb(self, ctx: click.Context, exc: click.ClickException) -> click.ClickException:
        verb = self.commands.get(ctx.invoked_subcommand or "")
        return for_gate(exc) if isinstance(verb, GateCommand) else exc


@click.group(cls=_Group)
@click.version_option(package_name="readykit")
def cli() -> None:
    """Production readiness for Python web services: measured, not claimed."""


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
def demo(host: str, port: int) -> None:
    """Run the bundled example service under uvicorn."""
    try:
        from readykit.demo import run
    except ImportError as exc:
        raise UserError(
            f"the demo needs its extra: pip install 'readykit[demo]' ({exc.name} is missing)"
        ) from exc
    run(host=host, port=port)


# Verbs that live in their own packages: each adds its command group here.
# --- verbs ---
from readykit.backup.cli import backup  # noqa: E402
from readykit.check.cli import check, wait  # noqa: E402
from readykit.deploy.cli import deploy_files  # noqa: E402
from readykit.jobs.cli import job  # noqa: E402
from readykit.load.cli import load  # noqa: E402
from readykit.privacy.cli import privacy  # noqa: E402
from readykit.records.cli import apm, audit  # noqa: E402

cli.add_command(backup)
cli.add_command(check)
cli.add_command(deploy_files)
cli.add_command(job)
cli.add_command(load)
cli.add_command(privacy)
cli.add_command(audit)
cli.add_command(apm)
cli.add_command(wait)
# --- end verbs ---


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="readykit")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
