"""The `prefkit` command line: a thin layer over the library; errors end in one line and an exit code."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from prefkit import __version__
from prefkit.errors import InputError, PrefkitError

console = Console(stderr=True)


class PrefkitGroup(click.Group):
    """Turns library errors into `error: <one line>` and the error's exit code (PREFKIT_DEBUG re-raises)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except PrefkitError as error:
            if os.environ.get("PREFKIT_DEBUG"):
                raise
            click.echo(f"error: {error}", err=True)
            ctx.exit(error.exit_code)


@click.group(cls=PrefkitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="prefkit")
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages to stderr.")
def cli(verbose: bool) -> None:
    """prefkit: teacher LLM + reviewers -> preference pairs -> DPO-aligned agent.

    \b
    Example:
      prefkit filter candidates.jsonl --out curated.jsonl --report report.json
    """
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="prefkit")


def _same_file(a: Path, b: Path) -> bool:
    return a.exists() and b.exists() and a.resolve() == b.resolve()


@cli.command("filter")
@click.argument("input_path", metavar="IN.jsonl", type=click.Path(path_type=Path))
@click.option("--out", "out_path", required=True, type=click.Path(path_type=Path), help="Kept pairs (JSONL).")
@click.option("--dropped", "dropped_path", type=click.Path(path_type=Path),
              help="Dropped pairs with their reasons under meta.filter [default: OUT with .dropped.jsonl].")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="FILTERS.yaml (see configs/filters.yaml).")
@click.option("--format", "format_name", help="Format of every pair, overriding meta.format (react, alfworld, ...).")
@click.option("--report", "report_path", type=click.Path(path_type=Path), help="Write the JSON report here.")
@click.option("--plots", "plots_dir", type=click.Path(path_type=Path), help="Write PNG histograms into this folder.")
@click.option("--eval-set", "eval_sets", multiple=True, type=click.Path(path_type=Path),
              help="Evaluation tasks/pairs (JSONL) to decontaminate against; repeatable.")
@click.option("--no-dedup", is_flag=True, help="Skip near-duplicate removal.")
@click.option("--skip-invalid", is_flag=True, help="Set aside unreadable lines in OUT.invalid.jsonl instead of stopping.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or table.")
def filter_command(input_path: Path, out_path: Path, dropped_path: Path | None, config_path: Path | None,
                   format_name: str | None, report_path: Path | None, plots_dir: Path | None,
                   eval_sets: tuple[Path, ...], no_dedup: bool, skip_invalid: bool, as_json: bool, quiet: bool) -> None:
    """Keep the pairs that pass the rule filters; every dropped pair says why.

    \b
    Example:
      prefkit filter candidates.jsonl --out curated.jsonl --format react --report filter.json --plots plots/
    """
    from prefkit.filters.pipeline import FilterConfig, run_filters
    from prefkit.formats import get_parser
    from prefkit.jsonl import InvalidLines, read_jsonl, write_json, write_jsonl
    from prefkit.records import Pair

    config = FilterConfig.from_yaml(config_path) if config_path else FilterConfig()
    if format_name:
        get_parser(format_name)
    if eval_sets:
        config.decontamination.eval_sets = [*config.decontamination.eval_sets, *eval_sets]
    if no_dedup:
        config.dedup.enabled = False
    dropped_path = dropped_path or out_path.with_suffix(".dropped.jsonl")
    for target in (out_path, dropped_path):
        if _same_file(input_path, target):
            raise InputError(f"output {target} is the input file; choose another --out/--dropped", str(input_path))
    invalid = InvalidLines(out_path.with_suffix(".invalid.jsonl")) if skip_invalid else None
    rows = read_jsonl(input_path, Pair, invalid=invalid)

    with _progress(quiet, len(rows), "filtering") as advance:
        result = run_filters(rows, config, format_override=format_name, progress=advance)
    write_jsonl(out_path, result.kept)
    write_jsonl(dropped_path, result.dropped)
    report = {"input": str(input_path), "out": str(out_path), "dropped_file": str(dropped_path), **result.report()}
    if invalid is not None:
        invalid.flush()
        report["invalid_lines"] = len(invalid)
        if len(invalid):
            report["invalid_file"] = str(invalid.path)
    if plots_dir:
        from prefkit.filters.plots import write_plots

        report["plots"] = [str(p) for p in write_plots(result.kept + result.dropped, plots_dir)]
    if report_path:
        write_json(report_path, report)
    if as_json:
        click.echo(json.dumps(report, indent=2))
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


def _quiet_training_libraries(quiet: bool) -> None:
    """transformers/datasets: errors only, no FutureWarnings we already handle; no progress bars with --quiet."""
    import warnings

    import transformers

    transformers.logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning)
    if quiet:
        import datasets

        transformers.utils.logging.disable_progress_bar()
        datasets.disable_progress_bars()


class _progress:
    """A rich progress bar (or nothing with --quiet); yields a function that advances it."""

    def __init__(self, quiet: bool, total: int, label: str):
        self.quiet, self.total, self.label = quiet, total, label
        self.bar = None

    def __enter__(self):
        if self.quiet or not sys.stderr.isatty():
            return None
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TimeRemainingColumn,
        )

        self.bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                            TimeRemainingColumn(), console=console, transient=True)
        self.bar.start()
        task = self.bar.add_task(self.label, total=self.total)
        return lambda n: self.bar.advance(task, n)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()
        return False


@cli.command("check")
@click.argument("file", required=False, type=click.Path(path_type=Path))
@click.option("--format", "format_name", required=True, help="Format to check against (react, alfworld, ...).")
@click.option("--text", help="Check this one assistant turn instead of a file.")
@click.option("--spec", "spec_path", type=click.Path(path_type=Path),
              help="YAML action spec (allowed actions, argument patterns, tools).")
@click.option("--json", "as_json", is_flag=True, help="One JSON result per turn on stdout.")
def check_command(file: Path | None, format_name: str, text: str | None, spec_path: Path | None, as_json: bool) -> None:
    """Validate single assistant turns and print their violations (exit 1 when any is invalid).

    FILE is JSONL of messages ({"role": "assistant", ...}), of conversations ({"messages": [...]}) or of
    pairs (chosen and rejected are checked).

    \b
    Example:
      prefkit check --format react --text $'Thought: look.\\nAction: Operation\\n```sql\\nSELECT 1;\\n```\\n'
      prefkit check --format alfworld turns.jsonl
    """
    from prefkit.config import read_yaml, validate_config
    from prefkit.formats import ActionSpec, parse_turn
    from prefkit.jsonl import iter_jsonl

    spec = validate_config(ActionSpec, read_yaml(spec_path), str(spec_path)) if spec_path else ActionSpec()
    if (file is None) == (text is None):
        raise click.UsageError("give either FILE or --text")
    turns = [("text", {"role": "assistant", "content": text})] if text is not None else list(_turns_of(iter_jsonl(file), file))
    invalid = 0
    for where, message in turns:
        parsed = parse_turn(format_name, message, spec)
        invalid += not parsed.valid
        if as_json:
            click.echo(json.dumps({"where": where, "valid": parsed.valid,
                                   "violations": [dataclasses.asdict(v) for v in parsed.violations],
                                   "action": dataclasses.asdict(parsed.action) if parsed.action else None}))
        elif parsed.valid:
            action = f" action={parsed.action.name}" if parsed.action else ""
            click.echo(f"{where}: ok{action}")
        else:
            for violation in parsed.violations:
                click.echo(f"{where}: {violation.code}: {violation.message}")
    if not as_json:
        click.echo(f"{len(turns) - invalid} of {len(turns)} turns valid", err=True)
    sys.exit(1 if invalid else 0)


def _turns_of(rows, path: Path):
    for line, row in rows:
        if "role" in row:
            yield f"{path}:{line}", row
        elif isinstance(row.get("messages"), list):
            for index, message in enumerate(row["messages"]):
                if isinstance(message, dict) and message.get("role") in ("assistant", "agent"):
                    yield f"{path}:{line}:messages[{index}]", message
        elif "chosen" in row and "rejected" in row:
            for side in ("chosen", "rejected"):
                for message in row[side] if isinstance(row[side], list) else []:
                    yield f"{path}:{line}:{side}", message
        else:
            raise InputError("expected a message, a 'messages' list or a pair", str(path), line)


@cli.command("tasks")
@click.argument("trajectories", type=click.Path(path_type=Path))
@click.option("--from", "source", required=True, type=click.Choice(["react", "alfworld-react", "agentbench", "messages"]),
              help="How the file is laid out.")
@click.option("--out", "out_path", required=True, type=click.Path(path_type=Path), help="Tasks (JSONL).")
@click.option("-q", "--quiet", is_flag=True, help="No summary.")
def tasks_command(trajectories: Path, source: str, out_path: Path, quiet: bool) -> None:
    """Split real trajectories into tasks: one per assistant turn, the real turn kept as meta.reference.

    \b
    Sources:
      react           ReAct paper prompts with numbered Thought N / Action N / Observation N (fever.json)
      alfworld-react  ReAct ALFWorld prompts with "> think: ..." / "> command" lines
      agentbench      AgentBench multi-turn JSON (roles user/agent/tool, tool calls) or DBBench .jsonl tasks
      messages        JSONL of {"messages": [...]} conversations

    \b
    Example:
      prefkit tasks data/corpus/react/alfworld_3prompts.json --from alfworld-react --out tasks.jsonl
    """
    from collections import Counter

    from prefkit.jsonl import write_jsonl
    from prefkit.trajectories import load_tasks

    tasks = load_tasks(trajectories, source)
    if not tasks:
        raise InputError(f"no assistant turns found for --from {source}; is that the right source?", str(trajectories))
    write_jsonl(out_path, tasks)
    if not quiet:
        formats = Counter(task["format"] for task in tasks)
        console.print(f"{len(tasks)} tasks -> {out_path} ({', '.join(f'{k}: {v}' for k, v in formats.items())})")


@cli.command("generate")
@click.argument("tasks_path", metavar="TASKS.jsonl", type=click.Path(path_type=Path))
@click.option("--out", "out_path", required=True, type=click.Path(path_type=Path),
              help="Candidate pairs (JSONL, appended; a re-run resumes).")
@click.option("--recipe", "recipe_path", type=click.Path(path_type=Path), help="Recipe YAML (its generate: section).")
@click.option("--base-url", help="Teacher base URL (overrides teacher.base_url).")
@click.option("--model", help="Teacher model (overrides teacher.model).")
@click.option("--strategy", type=click.Choice(["contrastive", "sample-rank", "corrupt"]), help="Overrides generate.strategy.")
@click.option("--concurrency", type=int, help="Requests in flight (overrides teacher.concurrency).")
@click.option("--limit", type=int, help="Only the first N tasks.")
@click.option("--skip-invalid", is_flag=True, help="Set aside unreadable task lines instead of stopping.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar or table.")
def generate_command(tasks_path: Path, out_path: Path, recipe_path: Path | None, base_url: str | None,
                     model: str | None, strategy: str | None, concurrency: int | None, limit: int | None,
                     skip_invalid: bool, as_json: bool, quiet: bool) -> None:
    """Ask the teacher for chosen/rejected turns; each pair is appended as soon as it exists.

    A killed run resumes where it stopped; answers are cached in OUT.cache.sqlite, so nothing is paid
    for twice. Tasks that failed after every retry are listed in OUT.failures and retried by the next run.
    The API key is read from the variable named by teacher.api_key_env (default OPENAI_API_KEY).

    \b
    Example:
      prefkit generate tasks.jsonl --recipe pipelines/dbbench.yaml --out candidates.jsonl
      prefkit generate tasks.jsonl --strategy corrupt --out candidates.jsonl
    """
    from prefkit.config import validate_config
    from prefkit.generate import GenerateConfig, Generator, read_tasks
    from prefkit.jsonl import InvalidLines
    from prefkit.recipe import Recipe

    config = (Recipe.from_yaml(recipe_path).generate or GenerateConfig()) if recipe_path else GenerateConfig()
    overrides = {"strategy": strategy, "limit": limit}
    teacher_overrides = {"base_url": base_url, "model": model, "concurrency": concurrency}
    data = config.model_dump()
    data.update({k: v for k, v in overrides.items() if v is not None})
    data["teacher"].update({k: v for k, v in teacher_overrides.items() if v is not None})
    config = validate_config(GenerateConfig, data, "generate options")
    if config.needs_teacher:
        config.teacher.require(str(recipe_path or "generate options"))
    if _same_file(tasks_path, out_path):
        raise InputError("--out is the task file; choose another output", str(tasks_path))
    invalid = InvalidLines(out_path.with_name(out_path.name + ".invalid")) if skip_invalid else None
    tasks = read_tasks(tasks_path, invalid)
    if invalid is not None:
        invalid.flush()
    if config.limit:
        tasks = tasks[: config.limit]

    with _progress(quiet, len(tasks), f"generate ({config.strategy})") as advance:
        generator = Generator(config, out_path, progress=advance)
        summary = generator.run(tasks)
    report = summary.as_dict()
    if invalid is not None:
        report["invalid_lines"] = len(invalid)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    if not quiet:
        _print_generate_table(summary)
    if summary.failed:
        raise PrefkitError(f"{summary.failed} of {summary.tasks} tasks failed after every retry; they are listed in "
                           f"{summary.failures_file} and the next run retries them")


def _print_generate_table(summary) -> None:
    table = Table(title=f"prefkit generate -> {summary.out}")
    table.add_column("")
    table.add_column("", justify="right")
    rows = [("tasks", summary.tasks), ("already done (resumed)", summary.already_done), ("pairs written", summary.pairs),
            ("skipped (no pair)", summary.skipped), ("failed", summary.failed), ("teacher requests", summary.requests),
            ("retries", summary.retries), ("cache hits", summary.cache_hits), ("prompt tokens", summary.prompt_tokens),
            ("completion tokens", summary.completion_tokens), ("seconds", f"{summary.seconds:.1f}")]
    if summary.cost is not None:
        rows.append(("cost", f"{summary.cost:.4f}"))
    for name, value in rows:
        table.add_row(name, str(value))
    console.print(table)
    if summary.repaired:
        console.print(f"[yellow]repaired a torn last line: {summary.repaired}")


@cli.command("dpo")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path), help="DPO config YAML (configs/dpo/).")
@click.option("--output-dir", help="Overrides output_dir.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a setting (YAML value; dotted keys for sections, e.g. lora.r=8); repeatable.")
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in output_dir.")
@click.option("--check-only", is_flag=True, help="Validate config and data, then stop before loading the model.")
@click.option("--json", "as_json", is_flag=True, help="Print the training summary as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or table.")
def dpo_command(config_path: Path, output_dir: str | None, overrides: tuple[str, ...], resume: bool, check_only: bool,
                as_json: bool, quiet: bool) -> None:
    """Train a LoRA adapter with TRL's DPOTrainer on reviewed pairs.

    Config, data and lengths are all checked before the model loads. Any DPOConfig key of the installed
    TRL may appear in the YAML and is passed through. For several processes use accelerate or torchrun:

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

    config = load_dpo_config(config_path, list(overrides), output_dir)
    if check_only:
        from prefkit.train.dpo import prepare

        _, _, _, report = prepare(config, str(config_path))
        click.echo(json.dumps(report.as_dict(), indent=2) if as_json else
                   f"ok: {report.train} train / {report.eval} eval pairs; {report.prompt_fills_max_length + report.chosen_cut} "
                   f"left out at max_length={config.max_length}")
        return
    _quiet_training_libraries(quiet)
    from prefkit.train.dpo import train

    summary = train(config, str(config_path), resume=resume, quiet=quiet)
    if not summary:
        return  # not the main process
    if as_json:
        click.echo(json.dumps({k: v for k, v in summary.items() if k != "log_history"}, indent=2))
    if not quiet:
        table = Table(title=f"prefkit dpo -> {config.output_dir}")
        table.add_column("metric")
        table.add_column("train (final)", justify="right")
        table.add_column("train (best)", justify="right")
        table.add_column("eval (final)", justify="right")
        for key in summary["train"]["final"]:
            cell = lambda part, kind: f"{summary[part][kind].get(key):.4f}" if key in summary[part][kind] else "-"
            table.add_row(key, cell("train", "final"), cell("train", "best"), cell("eval", "final"))
        data = summary["data"]
        console.print(table)
        console.print(f"{summary['steps']} steps; {data['train']} train / {data['eval']} eval pairs; "
                      f"{data['prompt_fills_max_length'] + data['chosen_cut']} left out at max_length; trainable "
                      f"{summary['trainable_parameters']:,} of {summary['total_parameters']:,} parameters (LoRA)")


@cli.command("merge")
@click.argument("adapter_dir", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Where the merged model goes.")
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
@click.option("--model", "models", multiple=True, required=True,
              help="[LABEL=]PATH (checkpoint or adapter dir) or [LABEL=]openai:MODEL@BASE_URL; repeatable, first is the baseline.")
@click.option("--tasks", "tasks_path", required=True, type=click.Path(path_type=Path), help="Held-out tasks (JSONL).")
@click.option("--format", "format_name", required=True, help="Format the turns must follow.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Report folder.")
@click.option("--limit", type=int, help="Only the first N tasks.")
@click.option("--max-new-tokens", default=96, show_default=True, help="Most tokens a generated turn may have.")
@click.option("--temperature", default=0.0, show_default=True, help="0 = greedy.")
@click.option("--batch-size", default=16, show_default=True, help="Local generation batch size.")
@click.option("--seed", default=0, show_default=True, help="Sampling and bootstrap seed.")
@click.option("--samples", default=1, show_default=True, help="Turns sampled per task (needs --temperature > 0).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="No table.")
def eval_command(models: tuple[str, ...], tasks_path: Path, format_name: str, out_dir: Path, limit: int | None,
                 max_new_tokens: int, temperature: float, batch_size: int, seed: int, samples: int, as_json: bool,
                 quiet: bool) -> None:
    """Generate next turns with each model and score them with the filter's rules, side by side.

    Writes report.json, report.md, chart.png and turns-LABEL.jsonl (every generated turn) to OUT.

    \b
    Example:
      prefkit eval --model before=runs/q/demo-model --model after=runs/q/adapter \\
          --tasks runs/q/eval-tasks.jsonl --format alfworld --out runs/q/eval
      prefkit eval --model openai:qwen3-8b@http://localhost:8000/v1 --tasks t.jsonl --format react --out rep/
    """
    from prefkit.evaluate import ModelSpec, evaluate, markdown
    from prefkit.formats import get_parser
    from prefkit.generate import read_tasks

    get_parser(format_name)
    specs = [ModelSpec.parse(text) for text in models]
    for spec in specs:
        if spec.remote is None:
            from prefkit.train import require_train_extra

            require_train_extra()
    tasks = read_tasks(tasks_path)[:limit]  # limit None keeps them all
    try:
        _quiet_training_libraries(quiet)
    except ImportError:
        pass  # remote models only: the core install is enough
    report = evaluate(specs, tasks, format_name, out_dir, max_new_tokens=max_new_tokens, temperature=temperature,
                      batch_size=batch_size, seed=seed, samples=samples,
                      progress=None if quiet else (lambda label: console.print(f"scored {label}")))
    if as_json:
        click.echo(json.dumps(report, indent=2))
    if not quiet:
        click.echo(markdown(report))
        console.print(f"report -> {out_dir / 'report.md'} (json, chart.png, generated turns beside it)")


@cli.command("run")
@click.argument("recipe_path", metavar="RECIPE.yaml", type=click.Path(path_type=Path))
@click.option("--run-dir", type=click.Path(path_type=Path), help="Where the stages' files go [default: runs/RECIPE-NAME].")
@click.option("--from", "from_stage", type=click.Choice(["tasks", "generate", "filter", "review", "dpo", "eval"]),
              help="Redo this stage and every later one.")
@click.option("--force", is_flag=True, help="Redo every stage.")
@click.option("-q", "--quiet", is_flag=True, help="Only the final table.")
def run_command(recipe_path: Path, run_dir: Path | None, from_stage: str | None, force: bool, quiet: bool) -> None:
    """Run a recipe's stages in order; unchanged finished stages are skipped.

    \b
    Example:
      prefkit run pipelines/quickstart.yaml            # offline: corpus turns, corrupt, filter, auto review, DPO, eval
      prefkit run pipelines/dbbench.yaml --run-dir runs/db1 --from filter
    """
    from prefkit.recipe import Recipe
    from prefkit.run import Runner
    from prefkit.run import StageResult as StageResultRow

    recipe = Recipe.from_yaml(recipe_path)
    run_dir = run_dir or Path("runs") / (recipe.name or recipe_path.stem)
    try:
        _quiet_training_libraries(quiet)
    except ImportError:
        pass  # core install: recipes without training stages still run
    runner = Runner(recipe, recipe_path, run_dir, force=force, from_stage=from_stage, quiet=quiet,
                    log=lambda text: console.print(f"[bold]{text}"))
    from prefkit.errors import ReviewPending

    pending = None
    try:
        results = runner.run()
    except ReviewPending as error:
        results, pending = runner.results + [StageResultRow("review", "waiting for reviewers")], error
    table = Table(title=f"prefkit run {recipe_path} -> {run_dir}")
    for column in ("stage", "status", "counts", "seconds"):
        table.add_column(column)
    for result in results:
        table.add_row(result.stage, result.status, ", ".join(f"{k}: {v}" for k, v in result.counts.items()),
                      f"{result.seconds:.1f}")
    console.print(table)
    if pending is not None:
        click.echo(f"review in progress: {pending}", err=True)
        sys.exit(pending.exit_code)
    report = run_dir / "eval" / "report.md"
    if report.exists():
        console.print(f"report: {report}")


@cli.command("demo-model")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Where the model goes.")
@click.option("--tasks", "tasks_path", type=click.Path(path_type=Path),
              help="Tasks with meta.reference to learn from [default: the bundled ALFWorld ReAct trajectories].")
@click.option("--epochs", default=3.0, show_default=True, help="SFT epochs.")
@click.option("--sloppy-share", default=0.5, show_default=True, help="Share of turns replaced by sloppy versions.")
@click.option("--seed", default=0, show_default=True)
@click.option("-q", "--quiet", is_flag=True)
def demo_model_command(out_dir: Path, tasks_path: Path | None, epochs: float, sloppy_share: float, seed: int,
                       quiet: bool) -> None:
    """Build a tiny Qwen3 from scratch and train it briefly (SFT, CPU) on real turns mixed with sloppy ones.

    Before DPO it produces both disciplined and sloppy turns: a toy to watch the mechanism work, not an agent.

    \b
    Example:
      prefkit demo-model --out runs/demo-model
    """
    from prefkit.train import require_train_extra

    require_train_extra()
    _quiet_training_libraries(quiet)
    from prefkit.generate import read_tasks
    from prefkit.records import context_chars
    from prefkit.train.demo_model import build_demo_model
    from prefkit.trajectories import load_tasks

    if tasks_path:
        tasks = read_tasks(tasks_path)
    else:
        root = Path(__file__).resolve().parents[1] / "data" / "corpus" / "react"
        tasks = [t for t in load_tasks(root / "alfworld_3prompts.json", "alfworld-react")
                 if context_chars(t["messages"]) <= 2000]
    path = build_demo_model(out_dir, tasks, epochs=epochs, sloppy_share=sloppy_share, seed=seed, quiet=quiet)
    console.print(f"demo model -> {path}")


@cli.group("review")
def review_group() -> None:
    """Human review of pairs: an Argilla queue (serve, add-annotator, push, status, pull) or `tui` offline.

    \b
    Example:
      prefkit review serve &                 # local Argilla, credentials in its data dir
      prefkit review add-annotator alice     # her password goes to DATA_DIR/annotators/alice.json
      prefkit review push curated.jsonl --dataset dbbench-v1
      prefkit review status --dataset dbbench-v1
      prefkit review pull --dataset dbbench-v1 --out reviewed.jsonl
    """


def _connection_options(command):
    """--api-url / --api-key / --data-dir / --workspace, shared by the commands that talk to a server."""
    command = click.option("--workspace", default="prefkit", show_default=True, help="Argilla workspace.")(command)
    command = click.option("--data-dir", type=click.Path(path_type=Path),
                           help="Where `review serve` wrote credentials.json [default: ~/.local/share/prefkit/argilla].")(command)
    command = click.option("--api-key", envvar="ARGILLA_API_KEY", help="API key [env ARGILLA_API_KEY].")(command)
    return click.option("--api-url", envvar="ARGILLA_API_URL", help="Argilla URL [env ARGILLA_API_URL].")(command)


@review_group.command("serve")
@click.option("--port", type=int, default=6900, show_default=True, help="Port on 127.0.0.1.")
@click.option("--data-dir", type=click.Path(path_type=Path),
              help="Database, logs and credentials.json [default: ~/.local/share/prefkit/argilla].")
@click.option("--database-url", help="PostgreSQL URL (postgresql+asyncpg://...) instead of SQLite in the data dir.")
@click.option("--redis-url", help="Use this Redis instead of starting redis-server.")
def review_serve_command(port: int, data_dir: Path | None, database_url: str | None, redis_url: str | None) -> None:
    """Run a local Argilla server (no Elasticsearch, no Docker) until Ctrl-C or SIGTERM.

    The first start builds the server's own environment (about a minute) and generates the owner's
    password and API key into DATA_DIR/credentials.json (readable by you only).

    \b
    Example:
      prefkit review serve --port 6900
    """
    from prefkit.review.serve import ArgillaServer, serve_forever

    server = ArgillaServer(data_dir, port=port, database_url=database_url, redis_url=redis_url,
                           say=lambda text: console.print(text))
    server.start()
    console.print(f"Argilla is up at {server.url} (user {server.credentials['username']}); password and API key "
                  f"in {server.data_dir / 'credentials.json'}. Ctrl-C stops it.")
    sys.exit(serve_forever(server))


def _read_pairs(path: Path) -> list[dict]:
    from prefkit.jsonl import read_jsonl
    from prefkit.records import Pair, ensure_pair_id

    return [ensure_pair_id(row) for row in read_jsonl(path, Pair)]


@review_group.command("push")
@click.argument("curated", metavar="CURATED.jsonl", type=click.Path(path_type=Path))
@click.option("--dataset", "dataset_name", required=True, help="Argilla dataset name (created if missing).")
@click.option("--annotators-per-pair", default=1, show_default=True, help="Submitted answers a pair needs.")
@click.option("--seed", default=0, show_default=True, help="Seed of the A/B order per pair.")
@_connection_options
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def review_push_command(curated: Path, dataset_name: str, annotators_per_pair: int, seed: int, api_url: str | None,
                        api_key: str | None, data_dir: Path | None, workspace: str, quiet: bool) -> None:
    """Put pairs into an Argilla review queue; pushing again updates records instead of duplicating.

    \b
    Example:
      prefkit review push curated.jsonl --dataset dbbench-v1 --annotators-per-pair 2
    """
    from rich.progress import Progress

    from prefkit.review.argilla_queue import push, resolve_connection

    rows = _read_pairs(curated)
    connection = resolve_connection(api_url, api_key, data_dir)
    with Progress(console=console, disable=quiet, transient=True) as bar:
        task = bar.add_task("pushing pairs", total=len(rows))
        result = push(rows, connection, dataset_name, workspace, annotators_per_pair, seed,
                      progress=lambda n: bar.advance(task, n))
    console.print(f"{result['pairs']} pairs in '{dataset_name}' ({result['added']} added, {result['updated']} "
                  f"updated); reviewers open {result['url']}")


@review_group.command("add-annotator")
@click.argument("username")
@_connection_options
def review_add_annotator_command(username: str, api_url: str | None, api_key: str | None, data_dir: Path | None,
                                 workspace: str) -> None:
    """Give a reviewer an account: an annotator with a generated password, in the workspace.

    The password goes into DATA_DIR/annotators/USERNAME.json (readable by you only), never on screen;
    an existing user is only added to the workspace.

    \b
    Example:
      prefkit review add-annotator alice
    """
    from prefkit.review.argilla_queue import add_annotator, resolve_connection
    from prefkit.review.serve import default_data_dir

    folder = Path(data_dir or default_data_dir()) / "annotators"
    result = add_annotator(resolve_connection(api_url, api_key, data_dir), username, folder, workspace)
    if result["created"]:
        console.print(f"annotator '{username}' created in workspace '{workspace}'; sign-in details in "
                      f"{result['credentials']}")
    else:
        console.print(f"'{username}' already has an account; now a member of workspace '{workspace}'")


@review_group.command("status")
@_connection_options
@click.option("--dataset", "dataset_name", required=True, help="Argilla dataset name.")
@click.option("--json", "as_json", is_flag=True, help="Print the progress as JSON on stdout.")
def review_status_command(api_url: str | None, api_key: str | None, data_dir: Path | None, workspace: str,
                          dataset_name: str, as_json: bool) -> None:
    """Review progress: pairs completed and pending, and each annotator's answers.

    \b
    Example:
      prefkit review status --dataset dbbench-v1
    """
    from prefkit.review.argilla_queue import resolve_connection, status

    result = status(resolve_connection(api_url, api_key, data_dir), dataset_name, workspace)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    console.print(f"'{dataset_name}': {result['completed']} of {result['total']} pairs completed, "
                  f"{result['pending']} pending ({result['annotators_per_pair']} answer(s) per pair)")
    table = Table("annotator", "submitted", "draft", "discarded", "pending")
    for user, counts in sorted(result["users"].items()):
        done = counts["submitted"] + counts["draft"] + counts["discarded"]
        table.add_row(user, *(str(counts[key]) for key in ("submitted", "draft", "discarded")),
                      str(max(result["total"] - done, 0)))
    console.print(table)


@review_group.command("pull")
@_connection_options
@click.option("--dataset", "dataset_name", required=True, help="Argilla dataset name.")
@click.option("--out", "out_path", required=True, type=click.Path(path_type=Path), help="Reviewed pairs (JSONL).")
@click.option("--dropped", "dropped_path", type=click.Path(path_type=Path),
              help="Decided but dropped pairs (ties, both bad, splits) [default: OUT with .dropped.jsonl].")
@click.option("--json", "as_json", is_flag=True, help="Print the counts and agreement as JSON on stdout.")
def review_pull_command(api_url: str | None, api_key: str | None, data_dir: Path | None, workspace: str,
                        dataset_name: str, out_path: Path, dropped_path: Path | None, as_json: bool) -> None:
    """Turn submitted answers into pairs: "B better" swaps, "both bad" + correction replaces chosen, ties and
    splits are dropped; several annotators are aggregated by majority, with Fleiss'/Cohen's kappa.

    \b
    Example:
      prefkit review pull --dataset dbbench-v1 --out reviewed.jsonl
    """
    from prefkit.jsonl import write_jsonl
    from prefkit.review.argilla_queue import pull, resolve_connection

    result = pull(resolve_connection(api_url, api_key, data_dir), dataset_name, workspace)
    dropped_path = dropped_path or out_path.with_name(out_path.name.removesuffix(".jsonl") + ".dropped.jsonl")
    write_jsonl(out_path, result.kept)
    write_jsonl(dropped_path, result.dropped)
    report = {"counts": dict(sorted(result.counts.items())), "agreement": result.agreement,
              "out": str(out_path), "dropped": str(dropped_path)}
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    table = Table("outcome", "pairs")
    for key, value in sorted(result.counts.items()):
        table.add_row(key, str(value))
    console.print(table)
    if result.agreement.get("pairs_with_several_answers"):
        console.print(f"agreement: {json.dumps(result.agreement)}")
    console.print(f"{len(result.kept)} reviewed pairs -> {out_path}; {len(result.dropped)} dropped -> {dropped_path}")


@review_group.command("tui")
@click.argument("curated", metavar="CURATED.jsonl", type=click.Path(path_type=Path))
@click.option("--out", "out_path", required=True, type=click.Path(path_type=Path), help="Reviewed pairs (JSONL).")
@click.option("--seed", default=0, show_default=True, help="Seed of the A/B order per pair.")
def review_tui_command(curated: Path, out_path: Path, seed: int) -> None:
    """Review pairs one at a time in the terminal: A/B in random order, keys a/b/t/x/s/u/q.

    Every answer is saved at once (OUT.decisions); run the same command again to resume. "B better" swaps
    chosen and rejected; ties and both-bad pairs are left out of OUT.

    \b
    Example:
      prefkit review tui runs/quickstart/curated.jsonl --out reviewed.jsonl
    """
    from prefkit.review.tui import review

    if _same_file(curated, out_path):
        raise InputError("--out is the input file; choose another output", str(curated))
    rows = _read_pairs(curated)

    def ask(prompt: str) -> str:
        console.print(prompt, end="")
        try:
            return input()
        except EOFError:
            return "q"

    counts = review(rows, out_path, ask, console.print, seed)
    console.print(f"decisions: {counts}; reviewed pairs -> {out_path}")
