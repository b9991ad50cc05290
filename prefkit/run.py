"""`prefkit run`: a recipe's stages in order, each one the same library function its command calls, with
the recipe's section as its config. Which files a stage reads and writes comes from the stage's own
declaration (`prefkit/stage.py`): an input is the newest file of its kind an earlier stage wrote into the
run directory. A stage whose outputs are complete and whose settings and inputs are unchanged (content
hashes in RUN_DIR/state.json) is skipped; one process at a time works in a run directory."""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from prefkit.errors import ConfigError, InputError
from prefkit.jsonl import read_json, write_json
from prefkit.lock import OutputLock
from prefkit.outputs import check_output_folder, inside, output_folder
from prefkit.recipe import Recipe
from prefkit.records import content_hash
from prefkit.stage import Plan, Stage, StageContext, no_progress
from prefkit.stages import NAMES, stage_named

# What to add to a recipe when no earlier stage writes the kind of file a stage reads.
MISSING_KIND = {
    "tasks": "tasks, which only a tasks: section writes",
    "pairs": "pairs, which no earlier stage of this recipe writes (add a generate: section)",
    "adapter": "a trained adapter, which only a dpo: section writes",
    "eval-tasks": "held-out tasks, which only a tasks: section writes",
}


@dataclass
class StageResult:
    """One row of the run table."""

    stage: str
    status: str
    counts: dict[str, Any] = field(default_factory=dict)
    seconds: float | None = 0.0  # None: a row under its stage (a dpo variant, an eval model)


@dataclass
class Step:
    """A stage as this recipe runs it: its config and the run-directory paths of its arguments."""

    stage: Stage
    config: BaseModel
    inputs: dict[str, Path]
    outputs: dict[str, Path]


def file_hash(path: Path) -> str:
    """Hash of a file's bytes, or of every file under a folder (names and bytes)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for item in files:
        digest.update(str(item.relative_to(path) if path.is_dir() else item.name).encode())
        with item.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:24]


def _paths_in(value: Any) -> list[Path]:
    """Every path a config names (its files' contents are part of the stage's key)."""
    if isinstance(value, Path):
        return [value]
    if isinstance(value, BaseModel):
        return [p for name in type(value).model_fields for p in _paths_in(getattr(value, name))]
    if isinstance(value, (list, tuple)):
        return [p for item in value for p in _paths_in(item)]
    if isinstance(value, dict):
        return [p for item in value.values() for p in _paths_in(item)]
    return []


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


class Runner:
    """Runs a recipe in a run directory; `results` holds the table rows."""

    def __init__(
        self,
        recipe: Recipe,
        recipe_path: Path,
        run_dir: Path,
        force: bool = False,
        overwrite: bool = False,
        from_stage: str | None = None,
        quiet: bool = False,
        verbose: bool = False,
        log: Callable[[str], None] = print,
        progress: Callable = no_progress,
    ):
        self.recipe, self.recipe_path, self.dir = recipe, Path(recipe_path), Path(run_dir)
        self.force, self.overwrite, self.from_stage = force, overwrite, from_stage
        self.quiet, self.verbose = quiet, verbose
        self.log, self.progress = log, progress
        self.results: list[StageResult] = []
        self.current: str | None = None  # the stage at work (or the last one that was)
        self.steps: list[Step] = []
        self.state_path = self.dir / "state.json"

    def stages(self) -> list[str]:
        """The stages this recipe has, in order."""
        return [name for name in NAMES if getattr(self.recipe, name) is not None]

    def plan(self) -> list[Step]:
        """Each stage with its run-directory files, from the stages' declarations; a stage that reads a kind of
        file no earlier stage writes is a ConfigError naming what to add."""
        source = str(self.recipe_path)
        names = self.stages()
        if not names:
            raise ConfigError(f"{source}: the recipe has no stages")
        stages = [stage_named(name) for name in names]
        produced: dict[str, Path] = {}
        steps = []
        for number, (name, stage) in enumerate(zip(names, stages)):
            config = getattr(self.recipe, name)
            inputs = stage.config_inputs(config, source)
            for argument, kind in stage.inputs.items():
                optional, kind = kind.endswith("?"), kind.rstrip("?")
                if argument in inputs:
                    continue
                if kind in produced:
                    inputs[argument] = produced[kind]
                elif not optional:
                    raise ConfigError(f"{source}: the {name} stage reads {MISSING_KIND.get(kind, kind)}")
            read_later = {kind.rstrip("?") for later in stages[number + 1 :] for kind in later.inputs.values()}
            outputs = {}
            for argument, output in stage.outputs.items():
                if output.optional and output.kind not in read_later:
                    continue
                outputs[argument] = produced[output.kind] = self.dir / output.name
            config = stage.plan(config, Plan(self.recipe.name or self.recipe_path.stem, source, inputs, outputs))
            steps.append(Step(stage, config, inputs, outputs))
        return steps

    def validate(self) -> list[Step]:
        """Everything that can be checked before any work: the plan, then each stage's own checks."""
        steps = self.plan()
        stages = self.stages()
        if self.from_stage and self.from_stage not in stages:
            raise ConfigError(f"--from {self.from_stage}: this recipe's stages are {', '.join(stages)}")
        for step in steps:
            step.stage.check(step.config, str(self.recipe_path))
        self._check_run_dir(steps)
        return steps

    def _check_run_dir(self, steps: list[Step]) -> None:
        """The run directory is new, empty or an earlier run's (or --overwrite), and no file the recipe reads
        lies where a stage writes: the run would replace or delete it."""
        earlier_run = (self.dir / "state.json").exists()
        check_output_folder("--run-dir", self.dir, overwrite=self.overwrite or earlier_run)
        written = [self.state_path, self.dir / "run.lock", *(p for step in steps for p in step.outputs.values())]
        read = [self.recipe_path, *(p for step in steps for p in _paths_in(step.config))]
        for source in read:
            for target in written:
                if inside(source, target):
                    raise ConfigError(
                        f"{self.recipe_path}: {source} is where this run writes {target.name}; keep the recipe's "
                        "files out of the run directory or choose another --run-dir"
                    )

    def _read_state(self) -> dict[str, Any]:
        if not self.state_path.exists():
            return {}
        fix = "delete it to run every stage again"
        state = read_json(self.state_path, "a prefkit run state", fix)
        if not all(isinstance(v, dict) for v in state.values()):
            raise InputError("not a prefkit run state; delete it to run every stage again", str(self.state_path))
        return state

    def run(self) -> list[StageResult]:
        """Run (or skip) every stage in order."""
        steps = self.steps = self.validate()
        with (
            output_folder(self.dir, keep_on_error=True),
            OutputLock(self.dir / "run.lock", f"run directory {self.dir}"),
        ):
            state = self._read_state()
            redo = False
            for step in steps:
                redo = redo or step.stage.name == self.from_stage
                self._step(step, state, redo)
        return self.results

    def shown_files(self) -> list[Path]:
        """The files the stages of this run point to when done (eval's report.md), those that exist."""
        return [
            path / output.show
            for step in self.steps
            for argument, output in step.stage.outputs.items()
            if output.show and (path := step.outputs.get(argument)) is not None and (path / output.show).exists()
        ]

    def _step(self, step: Step, state: dict[str, Any], redo: bool) -> None:
        name = self.current = step.stage.name
        missing = [p for p in step.inputs.values() if not p.exists()]
        if missing:
            raise InputError(f"stage '{name}' needs {missing[0]}, which an earlier stage should have written")
        config_files = [file_hash(p) for p in _paths_in(step.config) if p.exists()]
        key = content_hash(
            step.config.model_dump(mode="json"), [file_hash(p) for p in step.inputs.values()], config_files, length=24
        )
        previous = state.get(name, {})
        outputs = list(step.outputs.values())
        complete = previous.get("key") == key and all(
            p.exists() and previous.get("outputs", {}).get(str(p)) == file_hash(p) for p in outputs
        )
        if complete and not (self.force or redo):
            self.results.append(StageResult(name, "skipped (unchanged)", previous.get("counts", {})))
            self._add_rows(name, previous.get("rows", {}), "skipped (unchanged)")
            return
        resume = previous.get("key") == key and not (self.force or redo)
        if not resume:
            for path in outputs:
                _remove(path)
        if not self.quiet:
            self.log(f"stage {name} ...")
        ctx = StageContext(
            quiet=self.quiet,
            verbose=self.verbose,
            resume=resume,
            say=(lambda text: None) if self.quiet else self.log,
            progress=self.progress,
            source=str(self.recipe_path),
            overwrite=True,  # the run directory is prefkit's (checked before the first stage)
        )
        started = time.perf_counter()
        state[name] = {"key": key}  # an interrupted stage resumes only with these same settings
        write_json(self.state_path, state)
        report = step.stage.function(step.config, **step.inputs, **step.outputs, ctx=ctx)
        seconds = time.perf_counter() - started
        step.stage.verify(report)
        counts = step.stage.counts(report)
        rows = report.get("rows") or {}
        state[name] = {
            "key": key,
            "outputs": {str(p): file_hash(p) for p in outputs},
            "counts": counts,
            "rows": rows,
            "seconds": round(seconds, 2),
        }
        write_json(self.state_path, state)
        self.results.append(StageResult(name, "done", counts, seconds))
        self._add_rows(name, rows, "done")

    def _add_rows(self, name: str, rows: dict[str, dict[str, Any]], status: str) -> None:
        """A stage that did several things (dpo's variants, eval's models) shows a row for each."""
        for label, counts in rows.items():
            self.results.append(StageResult(f"  {name} {label}", status, counts, None))
