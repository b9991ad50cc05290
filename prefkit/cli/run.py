"""`prefkit run`: a whole recipe, stage by stage."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from prefkit.cli.app import console, progress_bar, quiet_training_libraries, verbose
from prefkit.cli.options import PATH
from prefkit.stages import NAMES, entry


@click.command("run")
@click.argument("recipe_path", metavar="RECIPE.yaml", type=PATH)
@click.option("--run-dir", type=PATH, help="Where the stages' files go [default: runs/RECIPE-NAME].")
@click.option("--from", "from_stage", type=click.Choice(NAMES), help="Redo this stage and every later one.")
@click.option("--force", is_flag=True, help="Redo every stage.")
@click.option(
    "--overwrite",
    is_flag=True,
    help="Use --run-dir even if it holds files prefkit did not write (stage files are replaced).",
)
@click.option("-q", "--quiet", is_flag=True, help="Only errors and the final table.")
def run_command(
    recipe_path: Path, run_dir: Path | None, from_stage: str | None, force: bool, overwrite: bool, quiet: bool
) -> None:
    """Run a recipe's stages in order; unchanged finished stages are skipped.

    Each section of the recipe is the config of the stage of that name, the same one its command builds
    from flags; relative paths in a recipe are relative to the recipe's folder.

    \b
    Example:
      prefkit run pipelines/quickstart.yaml            # offline: corpus turns, corrupt, filter, auto review, DPO, eval
      prefkit run pipelines/dbbench.yaml --run-dir runs/db1 --from filter
    """
    from prefkit.errors import ReviewPending
    from prefkit.recipe import Recipe
    from prefkit.run import Runner, StageResult

    recipe = Recipe.from_yaml(recipe_path)
    run_dir = run_dir or Path("runs") / (recipe.name or recipe_path.stem)
    loud = verbose()
    if not loud and any(entry(name).trains for name in NAMES if getattr(recipe, name) is not None):
        quiet_training_libraries()
    runner = Runner(
        recipe,
        recipe_path,
        run_dir,
        force=force,
        overwrite=overwrite,
        from_stage=from_stage,
        quiet=quiet,
        verbose=loud,
        log=lambda text: console.print(f"[bold]{text}", soft_wrap=True),
        progress=lambda label, total: progress_bar(quiet, label, total),
    )
    pending = None
    try:
        results = runner.run()
    except ReviewPending as error:
        results, pending = [*runner.results, StageResult(runner.current or "", "waiting for reviewers")], error
    if not quiet:
        table = Table(title=f"prefkit run {recipe_path} -> {run_dir}")
        for column in ("stage", "status", "counts", "seconds"):
            table.add_column(column)
        for result in results:
            counts = ", ".join(f"{k}: {v}" for k, v in result.counts.items())
            table.add_row(
                result.stage, result.status, counts, "" if result.seconds is None else f"{result.seconds:.1f}"
            )
        console.print(table)
    if pending is not None:
        click.echo(f"review in progress: {pending}", err=True)
        sys.exit(pending.exit_code)
    for shown in runner.shown_files():
        if not quiet:
            console.print(f"report: {shown}")
