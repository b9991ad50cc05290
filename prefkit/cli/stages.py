"""The stage commands: each builds its stage's config from its flags (over a recipe or config file when one
is given) and calls the stage's library function, the same one `prefkit run` calls."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.table import Table

from prefkit.cli.app import cli, console, progress_bar, quiet_training_libraries, stage_context, verbose
from prefkit.cli.options import build_config, choices, config_option, pop_config_flags
from prefkit.evaluate import EvalConfig
from prefkit.filters.pipeline import FilterConfig
from prefkit.generate import GenerateConfig
from prefkit.run import STAGES
from prefkit.tasks import TasksConfig
from prefkit.train.demo_model import DemoModelConfig

PATH = click.Path(path_type=Path)


def _echo_json(report: dict) -> None:
    click.echo(json.dumps(report, indent=2, default=str))


@cli.command("tasks")
@click.argument("trajectories", nargs=-1, required=True, type=PATH)
@click.option(
    "--from", "source", required=True, type=choices(TasksConfig, "source"), help="How the files are laid out."
)
@click.option("--out", "out_path", required=True, type=PATH, help="Tasks (JSONL).")
@click.option("--eval-out", "eval_path", type=PATH, help="Hold out --eval-share of the tasks into this file.")
@config_option(TasksConfig, "max_prompt_chars")
@config_option(TasksConfig, "unique_contexts", negative="all-contexts")
@config_option(TasksConfig, "eval_share")
@config_option(TasksConfig, "limit")
@config_option(TasksConfig, "seed")
@click.option("--skip-invalid", is_flag=True, help="--from tasks: set aside unreadable lines in OUT.invalid.jsonl.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No summary.")
def tasks_command(trajectories, source, out_path, eval_path, skip_invalid, as_json, quiet, **flags) -> None:
    """Split real trajectories into tasks: one per assistant turn, the real turn kept as meta.reference.

    Tasks are then selected as a recipe's tasks: section selects them: one per distinct context, shuffled
    with --seed, at most --limit, and with --eval-out a held-out share for `prefkit eval`.

    \b
    Sources:
      react           ReAct paper prompts with numbered Thought N / Action N / Observation N (fever.json)
      alfworld-react  ReAct ALFWorld prompts with "> think: ..." / "> command" lines
      agentbench      AgentBench multi-turn JSON (roles user/agent/tool, tool calls) or DBBench .jsonl tasks
      messages        JSONL of {"messages": [...]} conversations
      tasks           a tasks JSONL (to select from it again)

    \b
    Example:
      prefkit tasks data/corpus/react/alfworld_3prompts.json --from alfworld-react --out tasks.jsonl
      prefkit tasks a.json b.json --from alfworld-react --out tasks.jsonl --eval-out eval.jsonl --eval-share 0.2
    """
    from prefkit.tasks import make_tasks

    given = pop_config_flags(flags)
    if "eval_share" in given and eval_path is None:
        raise click.UsageError("--eval-share needs --eval-out (where the held-out tasks go)")
    config = build_config(TasksConfig, {"source": source, "path": list(trajectories)}, given, "tasks options")
    report = make_tasks(config, out_path, eval_path, skip_invalid=skip_invalid, ctx=stage_context(quiet))
    if as_json:
        _echo_json(report)
    elif not quiet:
        formats = ", ".join(f"{k}: {v}" for k, v in report["formats"].items())
        held = f"; {report['held out']} held out -> {eval_path}" if eval_path else ""
        console.print(f"{report['tasks']} tasks -> {out_path} ({formats}){held}")


@cli.command("generate")
@click.argument("tasks_path", metavar="TASKS.jsonl", type=PATH)
@click.option(
    "--out", "out_path", required=True, type=PATH, help="Candidate pairs (JSONL, appended; a re-run resumes)."
)
@click.option("--recipe", "recipe_path", type=PATH, help="Recipe YAML (its generate: section).")
@config_option(GenerateConfig, "teacher.base_url")
@config_option(GenerateConfig, "teacher.model")
@config_option(GenerateConfig, "strategy")
@config_option(GenerateConfig, "teacher.concurrency")
@config_option(GenerateConfig, "limit")
@click.option("--skip-invalid", is_flag=True, help="Set aside unreadable task lines in OUT.invalid.jsonl.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or table.")
def generate_command(tasks_path, out_path, recipe_path, skip_invalid, as_json, quiet, **flags) -> None:
    """Ask the teacher for chosen/rejected turns; each pair is appended as soon as it exists.

    A killed run resumes where it stopped; answers are cached in OUT.cache.sqlite, so nothing is paid
    for twice. Tasks that failed after every retry are listed in OUT.failures.jsonl and retried by the
    next run. One process at a time writes an output. The API key is read from the variable named by
    teacher.api_key_env (default OPENAI_API_KEY).

    \b
    Example:
      prefkit generate tasks.jsonl --recipe pipelines/dbbench.yaml --out candidates.jsonl
      prefkit generate tasks.jsonl --strategy corrupt --out candidates.jsonl
    """
    from prefkit.generate import STAGE, generate_file, raise_for_failures
    from prefkit.recipe import Recipe

    base = Recipe.from_yaml(recipe_path).generate if recipe_path else None
    source = str(recipe_path or "generate options")
    config = build_config(GenerateConfig, base, pop_config_flags(flags), source)
    STAGE.check(config, source)
    report = generate_file(config, tasks_path, out_path, skip_invalid=skip_invalid, ctx=stage_context(quiet, source))
    if as_json:
        _echo_json(report)
    if not quiet:
        _print_generate_table(report)
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
    if report["cost"] is not None:
        rows.append(("cost", f"{report['cost']:.4f}"))
    for name, value in rows:
        table.add_row(name, str(value))
    console.print(table)
    if report["repaired"]:
        console.print(f"[yellow]repaired a torn last line: {report['repaired']}")


@cli.command("filter")
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
    report = filter_file(
        config, input_path, out_path, dropped_path, report_path, plots=plots_dir, skip_invalid=skip_invalid,
        ctx=stage_context(quiet, source),
    )  # fmt: skip
    if as_json:
        _echo_json(report)
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


@cli.command("demo-model")
@click.option("--out", "out_dir", required=True, type=PATH, help="Where the model goes.")
@click.option(
    "--tasks", "tasks_path", type=PATH, help="Tasks with meta.reference [default: the bundled ALFWorld ReAct turns]."
)
@config_option(DemoModelConfig, "epochs")
@config_option(DemoModelConfig, "sloppy_share")
@config_option(DemoModelConfig, "hidden_size")
@config_option(DemoModelConfig, "layers")
@config_option(DemoModelConfig, "learning_rate")
@config_option(DemoModelConfig, "seed")
@click.option("-q", "--quiet", is_flag=True, help="Nothing but errors.")
def demo_model_command(out_dir, tasks_path, quiet, **flags) -> None:
    """Build a tiny Qwen3 from scratch and train it briefly (SFT, CPU) on real turns mixed with sloppy ones.

    Before DPO it produces both disciplined and sloppy turns: a toy to watch the mechanism work, not an agent.

    \b
    Example:
      prefkit demo-model --out runs/demo-model
    """
    from prefkit.train.demo_model import demo_model_stage

    config = build_config(DemoModelConfig, None, pop_config_flags(flags), "demo-model options")
    demo_model_stage(config, tasks_path, out_dir, ctx=stage_context(quiet, training=True))
    if not quiet:
        console.print(f"demo model -> {out_dir}")


@cli.command("dpo")
@click.option("--config", "config_path", required=True, type=PATH, help="DPO config YAML (configs/dpo/).")
@click.option("--output-dir", help="Overrides output_dir.")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a setting (YAML value; dotted keys for sections, e.g. lora.r=8); repeatable.",
)
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in output_dir.")
@click.option("--check-only", is_flag=True, help="Validate config and data, then stop before loading the model.")
@click.option("--json", "as_json", is_flag=True, help="Print the training summary as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="Nothing but errors.")
def dpo_command(config_path, output_dir, overrides, resume, check_only, as_json, quiet) -> None:
    """Train a LoRA adapter with TRL's DPOTrainer on reviewed pairs.

    Config, data and lengths are all checked before the model loads. Any DPOConfig key of the installed
    TRL may appear in the YAML and is passed through, every lora: key to peft's LoraConfig. For several
    processes use accelerate or torchrun:

    \b
    Example:
      prefkit dpo --config configs/dpo/tiny-cpu.yaml
      prefkit dpo --config configs/dpo/ironguard-qwen3-4b.yaml --set dataset=reviewed.jsonl --set beta=0.2
      accelerate launch --config_file configs/accelerate/ddp.yaml -m prefkit dpo --config ...
      torchrun --standalone --nproc_per_node 2 -m prefkit dpo --config configs/dpo/tiny-cpu.yaml   # CPU, gloo
    """
    from prefkit.train import require_train_extra

    require_train_extra()
    from prefkit.train.config import load_dpo_config

    source = str(config_path)
    config = load_dpo_config(config_path, list(overrides), output_dir)
    if check_only:
        from prefkit.train.dpo import prepare

        _, _, _, report = prepare(config, source)
        left_out = report.prompt_fills_max_length + report.chosen_cut
        click.echo(
            json.dumps(report.as_dict(), indent=2)
            if as_json
            else f"ok: {report.train} train / {report.eval} eval pairs; {left_out} left out at "
            f"max_length={config.trl('max_length')}"
        )
        return
    from prefkit.train.dpo import dpo_stage

    result = dpo_stage(config, resume=resume, ctx=stage_context(quiet, source, training=True))
    summary = result.get("summary")
    if not summary:
        return  # not the main process
    if as_json:
        _echo_json({k: v for k, v in summary.items() if k != "log_history"})
    if not quiet:
        _print_training_table(summary, config.output_dir)


def _print_training_table(summary: dict, output_dir: Path) -> None:
    table = Table(title=f"prefkit dpo -> {output_dir}")
    table.add_column("metric")
    table.add_column("train (final)", justify="right")
    table.add_column("train (best)", justify="right")
    table.add_column("eval (final)", justify="right")
    for key in summary["train"]["final"]:

        def cell(part: str, kind: str, key: str = key) -> str:
            return f"{summary[part][kind][key]:.4f}" if key in summary[part][kind] else "-"

        table.add_row(key, cell("train", "final"), cell("train", "best"), cell("eval", "final"))
    data = summary["data"]
    console.print(table)
    console.print(
        f"{summary['steps']} steps; {data['train']} train / {data['eval']} eval pairs; "
        f"{data['prompt_fills_max_length'] + data['chosen_cut']} left out at max_length; trainable "
        f"{summary['trainable_parameters']:,} of {summary['total_parameters']:,} parameters (LoRA)"
    )


@cli.command("merge")
@click.argument("adapter_dir", type=PATH)
@click.option("--out", "out_dir", required=True, type=PATH, help="Where the merged model goes.")
@click.option("--base", help="Base model path (default: the one recorded in the adapter).")
def merge_command(adapter_dir: Path, out_dir: Path, base: str | None) -> None:
    """Merge a LoRA adapter into its base: a plain checkpoint for AutoModelForCausalLM.from_pretrained.

    \b
    Example:
      prefkit merge runs/tiny-cpu/adapter --out runs/tiny-cpu/merged
    """
    from prefkit.train import require_train_extra

    require_train_extra()
    from prefkit.train.merge import merge_adapter

    console.print(f"merged model -> {merge_adapter(adapter_dir, out_dir, base)}")


@cli.command("eval")
@click.option(
    "--model",
    "models",
    multiple=True,
    required=True,
    help="[LABEL=]PATH (checkpoint or adapter dir) or [LABEL=]openai:MODEL@BASE_URL; repeatable, first is the "
    "baseline.",
)
@click.option("--tasks", "tasks_path", required=True, type=PATH, help="Held-out tasks (JSONL).")
@config_option(EvalConfig, "format", required=True)
@click.option("--out", "out_dir", required=True, type=PATH, help="Report folder.")
@config_option(EvalConfig, "limit")
@config_option(EvalConfig, "max_new_tokens")
@config_option(EvalConfig, "temperature")
@config_option(EvalConfig, "batch_size")
@config_option(EvalConfig, "seed")
@config_option(EvalConfig, "samples")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No table.")
def eval_command(models, tasks_path, out_dir, as_json, quiet, **flags) -> None:
    """Generate next turns with each model and score them with the filter's rules, side by side.

    Writes report.json, report.md, chart.png and turns-LABEL.jsonl (every generated turn) to OUT.

    \b
    Example:
      prefkit eval --model before=runs/q/demo-model --model after=runs/q/adapter \\
          --tasks runs/q/eval-tasks.jsonl --format alfworld --out runs/q/eval
      prefkit eval --model openai:qwen3-8b@http://localhost:8000/v1 --tasks t.jsonl --format react --out rep/
    """
    from prefkit.evaluate import STAGE, ModelSpec, evaluate_file, markdown

    source = "eval options"
    config = build_config(EvalConfig, None, pop_config_flags(flags), source)
    STAGE.check(config, source)
    specs = [ModelSpec.parse(text) for text in models]
    local = any(spec.remote is None for spec in specs)
    report = evaluate_file(config, tasks_path, out_dir, specs, ctx=stage_context(quiet, source, training=local))
    if as_json:
        _echo_json(report)
    if not quiet:
        click.echo(markdown(report))
        console.print(f"report -> {out_dir / 'report.md'} (json, chart.png, generated turns beside it)")


@cli.command("run")
@click.argument("recipe_path", metavar="RECIPE.yaml", type=PATH)
@click.option("--run-dir", type=PATH, help="Where the stages' files go [default: runs/RECIPE-NAME].")
@click.option("--from", "from_stage", type=click.Choice(STAGES), help="Redo this stage and every later one.")
@click.option("--force", is_flag=True, help="Redo every stage.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors and the final table.")
def run_command(recipe_path: Path, run_dir: Path | None, from_stage: str | None, force: bool, quiet: bool) -> None:
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
    if not loud and (recipe.dpo or recipe.demo_model or recipe.eval):
        quiet_training_libraries()
    runner = Runner(
        recipe,
        recipe_path,
        run_dir,
        force=force,
        from_stage=from_stage,
        quiet=quiet,
        verbose=loud,
        log=lambda text: console.print(f"[bold]{text}"),
        progress=lambda label, total: progress_bar(quiet, label, total),
    )
    pending = None
    try:
        results = runner.run()
    except ReviewPending as error:
        results, pending = [*runner.results, StageResult("review", "waiting for reviewers")], error
    if not quiet:
        table = Table(title=f"prefkit run {recipe_path} -> {run_dir}")
        for column in ("stage", "status", "counts", "seconds"):
            table.add_column(column)
        for result in results:
            counts = ", ".join(f"{k}: {v}" for k, v in result.counts.items())
            table.add_row(result.stage, result.status, counts, f"{result.seconds:.1f}")
        console.print(table)
    if pending is not None:
        click.echo(f"review in progress: {pending}", err=True)
        sys.exit(pending.exit_code)
    report = run_dir / "eval" / "report.md"
    if report.exists() and not quiet:
        console.print(f"report: {report}")
