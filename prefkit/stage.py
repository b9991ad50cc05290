"""A stage of the pipeline: one config model, one library function, and the files it reads and writes.

`prefkit <stage>` builds the config from its flags and calls the function with the paths the user gave;
`prefkit run` takes the config from the recipe's section of the same name and the paths from these
declarations: each input is the newest file of its kind that an earlier stage of the recipe wrote into
the run directory, each output goes to its declared name there."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel


@dataclass(frozen=True)
class Output:
    """A file (or folder) a stage writes: what it holds and its name in a run directory."""

    kind: str
    name: str
    optional: bool = False  # written only when a later stage of the recipe reads its kind
    show: str | None = None  # a file inside this folder that `prefkit run` points to when done (eval's report)


def _no_check(config: Any, source: str) -> None:
    return None


def _finished(report: dict[str, Any]) -> None:
    return None


def _no_inputs(config: Any, source: str) -> dict[str, Path]:
    return {}


def _as_planned(config: Any, plan: Plan) -> Any:
    return config


@dataclass(frozen=True)
class Plan:
    """What a recipe's run knows of one stage when it plans it: the recipe's name and file, and the run-directory
    paths of the stage's arguments."""

    recipe_name: str
    source: str
    inputs: dict[str, Path]
    outputs: dict[str, Path]


def _every_count(report: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in report.items() if isinstance(value, (int, float, str))}


@dataclass(frozen=True)
class Stage:
    """`function(config, **paths, ctx=StageContext)` returns the stage's report (a dict of counts);
    `inputs` maps its path arguments to the kinds of file they read, `outputs` to what they write;
    `check(config, source)` finds what can be found wrong before any work starts; `counts(report)` is the
    stage's row in the run table; `verify(report)` raises when the report says the work is unfinished (the
    run stops there and the next run goes on). In a recipe, `config_inputs(config, source)` gives the inputs
    the stage's own settings name (they replace the recipe's files of that kind), and `plan(config, Plan)`
    returns the config as the recipe runs it (defaults that depend on the recipe), raising a ConfigError for
    what the recipe as a whole lacks."""

    name: str
    config: type[BaseModel]
    function: Callable[..., dict[str, Any]]
    inputs: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, Output] = field(default_factory=dict)
    check: Callable[[Any, str], None] = _no_check
    counts: Callable[[dict[str, Any]], dict[str, Any]] = _every_count
    verify: Callable[[dict[str, Any]], None] = _finished
    config_inputs: Callable[[Any, str], dict[str, Path]] = _no_inputs
    plan: Callable[[Any, Plan], Any] = _as_planned


@contextmanager
def no_progress(label: str, total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar that shows nothing."""
    yield lambda n: None


def _say_nothing(text: str) -> None:
    return None


@dataclass
class StageContext:
    """How a stage reports while it works: `with ctx.progress(label, total) as advance:` shows a bar (advance(n)
    moves it); `say` prints a line; `resume` says an earlier attempt with the same settings may be continued;
    `source` names where the settings came from, for error messages; `overwrite` lets an output folder that
    holds files prefkit did not write be written into (the user's --overwrite)."""

    quiet: bool = False
    verbose: bool = False
    resume: bool = True
    say: Callable[[str], None] = _say_nothing
    progress: Callable[[str, int], AbstractContextManager[Callable[[int], None]]] = no_progress
    source: str = "options"
    overwrite: bool = False
