"""The `prefkit` command group: errors end in one line and an exit code; progress and tables go to stderr."""

from __future__ import annotations

import errno
import importlib
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click
from rich.console import Console

from prefkit import __version__
from prefkit.errors import PrefkitError
from prefkit.privacy import RedactingFilter, redact_text
from prefkit.stage import StageContext
from prefkit.stages import STAGES

console = Console(stderr=True)


# Each command lives in the module of its group and is imported only when it runs (or for --help), so a
# command pays only for its own imports.
# The stages' commands come from the stage list (`prefkit/stages.py`); these are the commands beside them.
COMMANDS = {
    **{entry.command: entry.cli for entry in STAGES},
    "check": "prefkit.cli.check:check_command",
    "merge": "prefkit.cli.train:merge_command",
    "run": "prefkit.cli.run:run_command",
}


class PrefkitGroup(click.Group):
    """Loads its commands on first use; turns library errors into `error: <one line>` and the error's exit
    code (PREFKIT_DEBUG re-raises)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, _, attribute = COMMANDS[name].partition(":")
        return getattr(importlib.import_module(module), attribute)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.UsageError as error:  # a bad flag or value: one line too, with where to read more
            where = error.ctx.command_path if error.ctx else ctx.command_path
            message = " ".join(error.format_message().split())  # click lists choices on several lines
            click.echo(f"error: {redact_text(message)} (see '{where} --help')", err=True)
            ctx.exit(error.exit_code)
        except PrefkitError as error:
            if os.environ.get("PREFKIT_DEBUG"):
                raise
            click.echo(f"error: {redact_text(str(error))}", err=True)
            ctx.exit(error.exit_code)
        except OSError as error:  # a path the checks could not foresee: gone read-only, full disk, ...
            if os.environ.get("PREFKIT_DEBUG"):
                raise
            if error.errno == errno.EPIPE:  # `prefkit ... | head`: the reader left; nothing more to say
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                ctx.exit(1)
            from prefkit.outputs import describe_os_error, os_error_exit_code

            click.echo(f"error: {redact_text(describe_os_error(error))}", err=True)
            ctx.exit(os_error_exit_code(error))


@click.group(cls=PrefkitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="prefkit")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages, and the training libraries' own output.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """prefkit: teacher LLM + reviewers -> preference pairs -> DPO-aligned agent.

    \b
    Example:
      prefkit filter candidates.jsonl --out curated.jsonl --report report.json
    """
    ctx.obj = {"verbose": verbose}
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    for handler in logging.getLogger().handlers:  # libraries log request URLs, credentials included
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


@contextmanager
def offering_skip_invalid() -> Iterator[None]:
    """For a command with --skip-invalid: an unreadable input line says the flag would set it aside."""
    from prefkit.errors import InputError

    try:
        yield
    except InputError as error:
        if not error.skippable:
            raise
        raise InputError(f"{error} (or pass --skip-invalid to set such lines aside)") from None


def echo_json(report: dict) -> None:
    """A report as indented JSON on stdout."""
    from prefkit.jsonl import finite

    click.echo(json.dumps(finite(report), indent=2, default=str, allow_nan=False))


def verbose() -> bool:
    """Whether the command line asked for -v."""
    context = click.get_current_context(silent=True)
    root = context.find_root() if context else None
    return bool(root and (root.obj or {}).get("verbose"))


@contextmanager
def progress_bar(quiet: bool, label: str, total: int) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on a terminal (nothing with --quiet or when stderr is a file)."""
    if quiet or not sys.stderr.isatty():
        yield lambda n: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    bar = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
    with bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def stage_context(
    quiet: bool, source: str = "options", training: bool = False, overwrite: bool = False
) -> StageContext:
    """How a stage called from the command line reports: bars and lines on stderr unless --quiet. `training`:
    the stage loads models, so the training libraries' own logs and bars are turned down (unless -v);
    `overwrite`: the user's --overwrite."""
    loud = verbose()
    if training and not loud:
        quiet_training_libraries()
    return StageContext(
        quiet=quiet,
        verbose=loud,
        say=(lambda text: None) if quiet else (lambda text: console.print(text, soft_wrap=True)),
        progress=lambda label, total: progress_bar(quiet, label, total),
        source=source,
        overwrite=overwrite,
    )


def quiet_training_libraries() -> None:
    """transformers and datasets: errors only and no tqdm bars (prefkit draws its own); nothing on the core
    install."""
    try:
        import datasets
        import transformers
    except ImportError:
        return
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()
