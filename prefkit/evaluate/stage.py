"""The eval stage: one library function that `prefkit eval` and a recipe's `eval:` section both call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefkit.errors import ConfigError
from prefkit.evaluate.config import EvalConfig, ModelSpec, adapter_models, check_models
from prefkit.evaluate.report import model_rows
from prefkit.outputs import check_outputs, output_folder
from prefkit.stage import Output, Stage, StageContext


def evaluate_file(
    config: EvalConfig,
    tasks: Path,
    out: Path,
    models: list[ModelSpec] | None = None,
    adapter: Path | None = None,
    *,
    ctx: StageContext | None = None,
) -> dict[str, Any]:
    """Evaluate `models` (or, given an `adapter`, its base as `before` and itself as `after`) on the tasks in
    `tasks`; writes the report folder `out` and returns the report."""
    from prefkit.train.progress import library_output

    ctx = ctx or StageContext()
    _check(config, ctx.source)
    if adapter is not None:
        models = adapter_models(Path(adapter))
    check_models(models or [])
    specs = [model.policy for model in models]
    replays = [model for model, spec in zip(models, specs) if spec.kind == "replay"]
    if replays and config.env is None:
        raise ConfigError(f"--model {replays[0].target}: a replay file is graded by an environment; give --env")
    read = [spec.path for spec in specs if spec.path is not None]
    check_outputs([tasks, *read], folders={"--out": out}, overwrite=ctx.overwrite)
    if any(spec.kind == "local" for spec in specs):
        from prefkit.train import require_train_extra

        require_train_extra()
    if config.env is not None:
        from prefkit.evaluate.episodes import evaluate_env

        with library_output(ctx.verbose), output_folder(out):
            return evaluate_env(config, models, Path(tasks), Path(out), ctx)
    from prefkit.evaluate.turns import evaluate
    from prefkit.tasks import read_tasks

    rows = read_tasks(tasks)[: config.limit]  # limit None keeps them all
    with library_output(ctx.verbose), output_folder(out):
        report = evaluate(
            models,
            rows,
            config.format,
            out,
            config.policy_settings(),
            samples=config.samples,
            progress=None if ctx.quiet else (lambda label: ctx.say(f"scored {label}")),
        )
    table_rows = model_rows(report)  # the run table's row per model, with variants
    return {**report, "rows": table_rows} if table_rows else report


def _check(config: EvalConfig, source: str) -> None:
    from prefkit.formats import get_parser

    if config.format is not None:
        get_parser(config.format)
    if config.samples > 1 and config.temperature == 0:
        raise ConfigError(f"{source}: several samples per task need a temperature above 0")


def _counts(report: dict[str, Any]) -> dict[str, Any]:
    labels = list(report["models"])
    first, last = report["models"][labels[0]], report["models"][labels[-1]]
    if len(labels) > 2:
        return {"models": len(labels)}  # a row for each below
    shown = (("success", "success"),) if report.get("env") else ()
    return {
        metric: f"{first[key]['mean'] or 0:.2f} -> {last[key]['mean'] or 0:.2f}"
        for metric, key in (*shown, ("format-valid", "format_valid"), ("filler", "filler"))
    }


def _config_inputs(config: EvalConfig, source: str) -> dict[str, Path]:
    """With an environment, episodes are played on the benchmark's own task file, not on held-out turns."""
    if config.env is None:
        return {}
    if config.tasks is None:
        raise ConfigError(f"{source}: eval.env needs eval.tasks, the benchmark's task file")
    return {"tasks": Path(config.tasks)}


STAGE = Stage(
    "eval",
    EvalConfig,
    evaluate_file,
    inputs={"tasks": "eval-tasks", "adapter": "adapter"},
    outputs={"out": Output("report", "eval", show="report.md")},
    check=_check,
    counts=_counts,
    config_inputs=_config_inputs,
)
