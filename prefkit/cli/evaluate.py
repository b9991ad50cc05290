"""`prefkit eval`: models side by side on held-out tasks."""

from __future__ import annotations

import click

from prefkit.cli.app import console, echo_json, stage_context
from prefkit.cli.options import PATH, build_config, config_option, env_flags_need_env, env_options, pop_config_flags
from prefkit.evaluate.config import EvalConfig


@click.command("eval")
@click.option(
    "--model",
    "models",
    multiple=True,
    required=True,
    help="[LABEL=]PATH (checkpoint or adapter dir) or [LABEL=]openai:MODEL@BASE_URL (with --env also "
    "[LABEL=]replay:FILE.jsonl); repeatable, first is the baseline.",
)
@click.option(
    "--tasks", "tasks_path", required=True, type=PATH, help="Held-out tasks (JSONL); with --env, the benchmark's."
)
@config_option(EvalConfig, "format")
@env_options
@config_option(EvalConfig, "concurrency")
@click.option("--out", "out_dir", required=True, type=PATH, help="Report folder.")
@config_option(EvalConfig, "limit")
@config_option(EvalConfig, "max_new_tokens")
@config_option(EvalConfig, "temperature")
@config_option(EvalConfig, "batch_size")
@config_option(EvalConfig, "seed")
@config_option(EvalConfig, "samples")
@click.option("--overwrite", is_flag=True, help="Write into OUT even if it holds files prefkit did not write.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No table.")
def eval_command(models, tasks_path, out_dir, overwrite, as_json, quiet, **flags) -> None:
    """Generate next turns with each model and score them with the filter's rules, side by side; with --env,
    play whole episodes with each model and measure task success as the benchmark grades it.

    Writes report.json, report.md, chart.png and turns-LABEL.jsonl (every generated turn) to OUT; with --env,
    trajectories-LABEL.jsonl (every episode; a re-run resumes them) and the benchmark's own metrics.

    \b
    Example:
      prefkit eval --model before=runs/q/demo-model --model after=runs/q/adapter \\
          --tasks runs/q/eval-tasks.jsonl --format alfworld --out runs/q/eval
      prefkit eval --model openai:qwen3-8b@http://localhost:8000/v1 --tasks t.jsonl --format react --out rep/
      prefkit eval --env dbbench --tasks dbbench_dev.jsonl --model base=runs/q/demo-model \
          --model after=runs/q/adapter --out rep/
    """
    from prefkit.evaluate.config import ModelSpec
    from prefkit.evaluate.report import markdown
    from prefkit.evaluate.stage import STAGE, evaluate_file

    source = "eval options"
    given = pop_config_flags(flags)
    env_flags_need_env(given, None)
    config = build_config(EvalConfig, None, given, source)
    STAGE.check(config, source)
    specs = [ModelSpec.parse(text) for text in models]
    local = any(spec.policy.kind == "local" for spec in specs)
    report = evaluate_file(
        config, tasks_path, out_dir, specs, ctx=stage_context(quiet, source, training=local, overwrite=overwrite)
    )
    if as_json:
        echo_json(report)
    if not quiet:
        click.echo(markdown(report))
        console.print(f"report -> {out_dir / 'report.md'} (json, chart.png, generated turns beside it)")
