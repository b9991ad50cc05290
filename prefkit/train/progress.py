"""What a person sees while a model trains: one rich progress bar (step, loss, reward accuracy, margin, ETA)
and a rich table at each evaluation, in place of transformers' tqdm bars and raw metric dicts. With
`verbose`, transformers' own output is left as it is; with `quiet`, nothing is shown."""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SHOWN = (("loss", "loss"), ("rewards/accuracies", "acc"), ("rewards/margins", "margin"))


def _metrics_line(logs: dict[str, Any]) -> str:
    parts = [f"{label} {logs[key]:.3f}" for key, label in SHOWN if isinstance(logs.get(key), (int, float))]
    return "  ".join(parts)


@contextmanager
def library_output(verbose: bool) -> Iterator[None]:
    """While a model trains, the training libraries' own noise is kept off the terminal unless `verbose`:
    their FutureWarnings about each other's internals, and tqdm bars that no setting turns off (TRL's
    reference log-prob pass reads only TQDM_DISABLE). Scoped: filters and the variable are restored."""
    if verbose:
        yield
        return
    previous = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"(transformers|trl|peft|accelerate)\.")
            yield
    finally:
        if previous is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = previous


def attach_progress(trainer: Any, title: str, quiet: bool, verbose: bool) -> None:
    """Replace the trainer's tqdm bars and printed dicts with prefkit's display (or with nothing)."""
    if verbose:
        return
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.args.disable_tqdm = True
    trainer.remove_callback(ProgressCallback)
    trainer.remove_callback(PrinterCallback)
    if not quiet:
        trainer.add_callback(_rich_progress()(title))


@functools.cache
def _rich_progress() -> type:
    """The callback class, built on first use: transformers is imported only when something trains."""
    from transformers import TrainerCallback

    class RichProgress(TrainerCallback):
        """Draws the bar on the main process only."""

        def __init__(self, title: str):
            self.title = title
            self.bar = None
            self.task = None
            self.metrics = ""

        def on_train_begin(self, args, state, control, **kwargs):
            if not state.is_world_process_zero:
                return
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[metrics]}"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self.bar.start()
            self.task = self.bar.add_task(self.title, total=state.max_steps or None, metrics="")

        def on_step_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.update(self.task, completed=state.global_step)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if self.bar is not None and logs and "loss" in logs:
                self.metrics = _metrics_line(logs)
                self.bar.update(self.task, metrics=self.metrics)

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            if self.bar is None or not metrics:
                return
            from rich.table import Table

            table = Table(title=f"evaluation at step {state.global_step}")
            table.add_column("metric")
            table.add_column("value", justify="right")
            for key, value in metrics.items():
                if isinstance(value, (int, float)) and not key.endswith(("runtime", "per_second")):
                    table.add_row(key.removeprefix("eval_"), f"{value:.4f}")
            self.bar.console.print(table)

        def on_train_end(self, args, state, control, **kwargs):
            if self.bar is not None:
                self.bar.update(self.task, completed=state.global_step)
                self.bar.stop()
                self.bar = None

    return RichProgress
