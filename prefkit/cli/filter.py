"""`prefkit filter`: the rule filters, dedup and decontamination over a pairs file."""

from __future__ import annotations

import click
from rich.table import Table

from prefkit.cli.app import console, echo_json, offering_skip_invalid, stage_context
from prefkit.cli.options import PATH, build_config, config_option, pop_config_flags
from prefkit.filters.pipeline import FilterConfig


@click.command("filter")
@click.argument("input_path", metavar="IN.jsonl", type=PATH)
@click.option("--out", "out_path", required=True, type=PATH, help="Kept pairs (JSONL).")
@click.option(
    "--dropped", "dropped_path", type=PATH, help="Dropped pairs with their reasons [default: OUT.dropped.jsonl]."
)
@click.option("--config", "config_path", type=PATH, help="FILTERS.yaml (see configs/filters.yaml).")
@config_option(FilterConfig, "force_format", "--format")
@click.option("--report", "report_path", type=PATH, help="Write the JSON report here.")
@click.option("--plots", "plots_dir", type=PATH, help="Write PNG histograms into this folder.")
@click.option(
    "--eval-set", "eval_sets", multiple=True, type=PATH, help="Evaluation tasks/pairs to decontaminate against."
)
@click.option("--no-dedup", is_flag=True, help="Skip near-duplicate removal.")
@click.option(
    "--skip-invalid", is_flag=True, help="Set aside unreadable lines in OUT.invalid.jsonl instead of stopping."
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or table.")
def filter_command(
    input_path, out_path, dropped_path, config_path, report_path, plots_dir, eval_sets, no_dedup, skip_invalid,
    as_json, quiet, **flags,
) -> None:  # fmt: skip
    """Keep the pairs that pass the rule filters; every dropped pair says why.

    \b
    Example:
      prefkit filter candidates.jsonl --out curated.jsonl --format react --report filter.json --plots plots/
    """
    from prefkit.config import read_yaml
    from prefkit.filters.pipeline import STAGE, filter_file

    given = pop_config_flags(flags)
    base = read_yaml(config_path) if config_path else {}
    if eval_sets:
        given["decontamination.eval_sets"] = [*base.get("decontamination", {}).get("eval_sets", []), *eval_sets]
    if no_dedup:
        given["dedup.enabled"] = False
    source = str(config_path or "filter options")
    config = build_config(FilterConfig, base, given, source)
    STAGE.check(config, source)
    with offering_skip_invalid():
        report = filter_file(
            config, input_path, out_path, dropped_path, report_path, plots=plots_dir, skip_invalid=skip_invalid,
            ctx=stage_context(quiet, source),
        )  # fmt: skip
    if as_json:
        echo_json(report)
    if not quiet:
        _print_filter_table(report)


def _print_filter_table(report: dict) -> None:
    table = Table(title=f"prefkit filter: kept {report['kept']} of {report['total']} pairs")
    table.add_column("reason")
    table.add_column("pairs", justify="right")
    for reason, count in report["reasons"].items():
        table.add_row(reason, str(count))
    table.add_section()
    table.add_row("[bold]kept", f"[bold]{report['kept']}")
    table.add_row("[bold]dropped", f"[bold]{report['dropped']}")
    if report.get("invalid_lines"):
        table.add_row("invalid lines (set aside)", str(report["invalid_lines"]))
    console.print(table)
    console.print(f"kept -> {report['out']}   dropped -> {report['dropped_file']}")
