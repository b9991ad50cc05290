"""`prefkit generate`: candidate pairs from a teacher (or from corruptions)."""

from __future__ import annotations

import click
from rich.table import Table

from prefkit.cli.app import console, echo_json, offering_skip_invalid, stage_context
from prefkit.cli.options import PATH, build_config, config_option, pop_config_flags
from prefkit.generate import GenerateConfig


def one_or_many(urls: tuple[str, ...]) -> str | list[str] | None:
    """--base-url given once is one endpoint, given several times a list of them."""
    return None if not urls else urls[0] if len(urls) == 1 else list(urls)


@click.command("generate")
@click.argument("tasks_path", metavar="TASKS.jsonl", type=PATH)
@click.option(
    "--out", "out_path", required=True, type=PATH, help="Candidate pairs (JSONL, appended; a re-run resumes)."
)
@click.option("--recipe", "recipe_path", type=PATH, help="Recipe YAML (its generate: section).")
@config_option(GenerateConfig, "teacher.base_url", multiple=True, callback=lambda ctx, param, urls: one_or_many(urls))
@config_option(GenerateConfig, "teacher.model")
@config_option(GenerateConfig, "strategy")
@config_option(GenerateConfig, "teacher.concurrency")
@config_option(GenerateConfig, "limit")
@config_option(GenerateConfig, "teacher.mode")
@click.option(
    "--batch-file-only",
    is_flag=True,
    help="Write the requests still missing as OpenAI Batch API input files (OUT.batches/input-*.jsonl) and stop, "
    "e.g. for `vllm run-batch`; nothing is sent.",
)
@click.option(
    "--batch-results",
    type=PATH,
    metavar="FILE",
    help="Read a batch output file (of input files this output wrote) into the answer cache first.",
)
@click.option("--skip-invalid", is_flag=True, help="Set aside unreadable task lines in OUT.invalid.jsonl.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or table.")
def generate_command(
    tasks_path, out_path, recipe_path, batch_file_only, batch_results, skip_invalid, as_json, quiet, **flags
) -> None:
    """Ask the teacher for chosen/rejected turns; each pair is appended as soon as it exists.

    A killed run resumes where it stopped; answers are cached in OUT.cache.sqlite, so nothing is paid
    for twice. Tasks that failed after every retry are listed in OUT.failures.jsonl and retried by the
    next run. One process at a time writes an output. The API key is read from the variable named by
    teacher.api_key_env (default OPENAI_API_KEY). teacher.base_url may list several endpoints.

    With --mode batch (teacher.mode: batch) the requests go through the OpenAI Batch API: submitted, polled
    and read back into the same cache; a killed run resumes by the batch ids in OUT.batches/state.jsonl.

    \b
    Example:
      prefkit generate tasks.jsonl --recipe pipelines/dbbench.yaml --out candidates.jsonl
      prefkit generate tasks.jsonl --strategy corrupt --out candidates.jsonl
      prefkit generate tasks.jsonl --recipe r.yaml --out c.jsonl --batch-file-only
      vllm run-batch -i c.batches/input-0001.jsonl -o results.jsonl --model MODEL
      prefkit generate tasks.jsonl --recipe r.yaml --out c.jsonl --batch-results results.jsonl
    """
    from prefkit.generate import generate_file, raise_for_failures
    from prefkit.recipe import Recipe

    base = Recipe.from_yaml(recipe_path).generate if recipe_path else None
    source = str(recipe_path or "generate options")
    config = build_config(GenerateConfig, base, pop_config_flags(flags), source)
    if config.needs_teacher:  # writing batch files needs the model's name but no server
        config.teacher.require(source, flags=True, names=("model",) if batch_file_only else ("base_url", "model"))
    with offering_skip_invalid():
        report = generate_file(
            config,
            tasks_path,
            out_path,
            skip_invalid=skip_invalid,
            ctx=stage_context(quiet, source),
            batch_file_only=batch_file_only,
            batch_results=batch_results,
        )
    if as_json:
        echo_json(report)
    if not quiet:
        _print_generate_table(report)
        if report["batch_files"]:
            console.print(
                f"{report['waiting']} tasks wait for the answers to {', '.join(report['batch_files'])}; run them "
                "(e.g. `vllm run-batch -i FILE -o RESULTS --model MODEL`), then pass --batch-results RESULTS"
            )
    raise_for_failures(report)


def _print_generate_table(report: dict) -> None:
    table = Table(title=f"prefkit generate -> {report['out']}")
    table.add_column("")
    table.add_column("", justify="right")
    rows = [
        ("tasks", report["tasks"]),
        ("already done (resumed)", report["already_done"]),
        ("pairs written", report["pairs"]),
        ("skipped (no pair)", report["skipped"]),
        ("failed", report["failed"]),
        ("teacher requests", report["requests"]),
        ("retries", report["retries"]),
        ("cache hits", report["cache_hits"]),
        ("prompt tokens", report["prompt_tokens"]),
        ("completion tokens", report["completion_tokens"]),
        ("seconds", f"{report['seconds']:.1f}"),
    ]
    if report["mode"] == "batch":
        rows[6:6] = [
            ("batches", len(report["batches"])),
            ("batch lines failed", sum(batch["failed"] for batch in report["batches"])),
            ("waiting for batch answers", report["waiting"]),
        ]
    if report["cost"] is not None:
        rows.append(("cost", f"{report['cost']:.4f}"))
    for name, value in rows:
        table.add_row(name, str(value))
    console.print(table)
    if len(report["endpoints"]) > 1 and any(endpoint["requests"] for endpoint in report["endpoints"]):
        _print_endpoints(report["endpoints"])
    if report["repaired"]:
        console.print(f"[yellow]repaired a torn last line: {report['repaired']}")


def _print_endpoints(endpoints: list[dict]) -> None:
    table = Table(title="teacher endpoints")
    for name in ("endpoint", "requests", "errors", "mean latency", "p95 latency", "rested"):
        table.add_column(name, justify="left" if name == "endpoint" else "right")
    for endpoint in endpoints:
        seconds = [endpoint[k] for k in ("mean_latency_s", "p95_latency_s")]
        table.add_row(
            str(endpoint["url"]),
            str(endpoint["requests"]),
            str(endpoint["errors"]),
            *("-" if value is None else f"{value:.3f}s" for value in seconds),
            str(endpoint["rests"]),
        )
    console.print(table)
