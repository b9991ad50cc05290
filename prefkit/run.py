"""`prefkit run`: a recipe's stages in order (tasks -> generate -> filter -> review -> dpo -> eval), each
reading the previous stage's files in the run directory. A stage whose outputs are complete and whose
inputs and settings are unchanged (content hashes in RUN_DIR/state.json) is skipped."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefkit.config import read_yaml
from prefkit.errors import ConfigError, InputError, MissingExtraError, PrefkitError, ReviewPending
from prefkit.jsonl import read_jsonl, write_json, write_jsonl
from prefkit.recipe import Recipe
from prefkit.records import content_hash, context_chars

STAGES = ("tasks", "generate", "filter", "review", "dpo", "eval")


@dataclass
class StageResult:
    """One row of the run table."""

    stage: str
    status: str
    counts: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


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


class Runner:
    """Runs a recipe in a run directory; `results` holds the table rows."""

    def __init__(self, recipe: Recipe, recipe_path: Path, run_dir: Path, force: bool = False,
                 from_stage: str | None = None, quiet: bool = False, log: Callable[[str], None] = print):
        self.recipe, self.recipe_path, self.dir = recipe, recipe_path, run_dir
        self.force, self.from_stage, self.quiet, self.log = force, from_stage, quiet, log
        self.results: list[StageResult] = []
        self.state_path = run_dir / "state.json"
        self.state: dict[str, Any] = json.loads(self.state_path.read_text()) if self.state_path.exists() else {}
        self.redo = False

    # -- what each stage reads, writes and runs ------------------------------------------------------------
    def stages(self) -> list[str]:
        """The stages this recipe has, in order."""
        return [name for name in STAGES if getattr(self.recipe, name) is not None]

    def path(self, name: str) -> Path:
        return self.dir / name

    def validate(self) -> None:
        """Everything that can be checked before any work: a missing teacher, a bad dpo config, a review mode."""
        recipe, source = self.recipe, str(self.recipe_path)
        stages = self.stages()
        if not stages:
            raise ConfigError(f"{source}: the recipe has no stages")
        if recipe.tasks is None:
            raise ConfigError(f"{source}: `prefkit run` needs a tasks: section")
        if not recipe.tasks.path:
            raise ConfigError(f"{source}: missing required setting 'tasks.path'")
        for item in recipe.tasks.path:
            if not Path(item).exists():
                raise InputError("tasks file not found; check tasks.path", str(item))
        if recipe.generate is not None and recipe.generate.needs_teacher:
            recipe.generate.teacher.require(source)
        if recipe.review is not None and recipe.review.mode == "argilla":
            from prefkit.review.argilla_queue import resolve_connection

            try:
                import argilla  # noqa: F401
            except ImportError:
                raise MissingExtraError("review", "argilla") from None
            review = recipe.review
            try:
                self.argilla = resolve_connection(review.api_url, None, review.data_dir)
            except InputError as error:
                raise ConfigError(f"{source}: review mode 'argilla': {error}") from None
        if recipe.review is not None and recipe.review.mode == "tui" and not sys.stdin.isatty():
            raise ConfigError(f"{source}: review mode 'tui' needs a terminal, and standard input is not one")
        if recipe.dpo is not None:
            from prefkit.train import require_train_extra
            from prefkit.train.config import load_dpo_config

            require_train_extra()
            self.dpo_config = load_dpo_config(recipe.dpo.config, self._dpo_overrides())
        if recipe.eval is not None:
            from prefkit.formats import get_parser

            get_parser(recipe.eval.format)
            if recipe.dpo is None:
                raise ConfigError(f"{source}: the eval stage compares the base model with the trained adapter; "
                                  "it needs a dpo: section")

    def _dpo_overrides(self) -> list[str]:
        dpo = self.recipe.dpo
        data = self.path("reviewed.jsonl") if self.recipe.review else self.path("curated.jsonl")
        overrides = [f"dataset={data}", f"output_dir={self.path('adapter')}"]
        if dpo.base_model == "demo":
            overrides.append(f"model={self.path('demo-model')}")
        elif dpo.base_model:
            overrides.append(f"model={dpo.base_model}")
        overrides += [f"{key}={json.dumps(value)}" for key, value in dpo.set.items()]
        return overrides

    def plan(self, name: str) -> tuple[dict[str, Any], list[Path], list[Path]]:
        """(settings, inputs, outputs) of a stage; the settings and input hashes decide whether it reruns."""
        recipe = self.recipe
        tasks, eval_tasks = self.path("tasks.jsonl"), self.path("eval-tasks.jsonl")
        if name == "tasks":
            return recipe.tasks.model_dump(mode="json"), list(recipe.tasks.path), [tasks, eval_tasks]
        if name == "generate":
            return recipe.generate.model_dump(mode="json"), [tasks], [self.path("candidates.jsonl")]
        last = self.path("candidates.jsonl") if recipe.generate else tasks
        if name == "filter":
            return recipe.filter.model_dump(mode="json"), [last], [self.path("curated.jsonl")]
        if name == "review":
            return recipe.review.model_dump(mode="json"), [self.path("curated.jsonl")], [self.path("reviewed.jsonl")]
        if name == "dpo":
            settings = {"recipe": recipe.dpo.model_dump(mode="json"), "config": read_yaml(recipe.dpo.config)}
            data = self.path("reviewed.jsonl") if recipe.review else self.path("curated.jsonl")
            inputs = [data] + ([tasks] if recipe.dpo.base_model == "demo" else [])
            return settings, inputs, [self.path("adapter")]
        return (recipe.eval.model_dump(mode="json"), [eval_tasks, self.path("adapter")],
                [self.path("eval") / "report.json"])

    # -- running -----------------------------------------------------------------------------------------
    def run(self) -> list[StageResult]:
        """Run (or skip) every stage in order."""
        self.validate()
        self.dir.mkdir(parents=True, exist_ok=True)
        stages = self.stages()
        if self.from_stage and self.from_stage not in stages:
            raise ConfigError(f"--from {self.from_stage}: this recipe's stages are {', '.join(stages)}")
        for name in stages:
            if name == self.from_stage:
                self.redo = True
            settings, inputs, outputs = self.plan(name)
            missing = [p for p in inputs if not p.exists()]
            if missing:
                raise InputError(f"stage '{name}' needs {missing[0]}, which an earlier stage should have written")
            key = content_hash(settings, [file_hash(p) for p in inputs], length=24)
            previous = self.state.get(name, {})
            complete = previous.get("key") == key and all(
                p.exists() and previous.get("outputs", {}).get(str(p)) == file_hash(p) for p in outputs)
            if complete and not (self.force or self.redo):
                self.results.append(StageResult(name, "skipped (unchanged)", previous.get("counts", {})))
                continue
            self.redo = True  # everything after a stage that ran must run too
            if not self.quiet:
                self.log(f"stage {name} ...")
            started = time.perf_counter()
            counts = getattr(self, f"_run_{name}")(previous.get("key") == key)
            seconds = time.perf_counter() - started
            self.state[name] = {"key": key, "outputs": {str(p): file_hash(p) for p in outputs}, "counts": counts,
                                "seconds": round(seconds, 2)}
            write_json(self.state_path, self.state)
            self.results.append(StageResult(name, "done", counts, seconds))
        return self.results

    def _run_tasks(self, same_key: bool) -> dict[str, Any]:
        from prefkit.generate import read_tasks
        from prefkit.trajectories import load_tasks

        config = self.recipe.tasks
        tasks: list[dict] = []
        for item in config.path:
            tasks.extend(read_tasks(item) if config.source == "tasks" else load_tasks(item, config.source))
        if config.max_prompt_chars:
            tasks = [t for t in tasks if context_chars(t["messages"]) <= config.max_prompt_chars]
        if config.unique_contexts:
            seen, unique = set(), []
            for task in tasks:
                key = content_hash(task["messages"])
                if key not in seen:
                    seen.add(key)
                    unique.append(task)
            tasks = unique
        random.Random(config.seed).shuffle(tasks)
        if config.limit:
            tasks = tasks[: config.limit]
        held = round(len(tasks) * config.eval_share) if self.recipe.eval else 0
        if len(tasks) - held < 1:
            raise InputError("no tasks left after the tasks: settings; loosen max_prompt_chars or limit")
        write_jsonl(self.path("eval-tasks.jsonl"), tasks[:held])
        write_jsonl(self.path("tasks.jsonl"), tasks[held:])
        return {"tasks": len(tasks) - held, "held out": held}

    def _run_generate(self, same_key: bool) -> dict[str, Any]:
        from prefkit.generate import Generator, read_tasks

        out = self.path("candidates.jsonl")
        if not same_key:  # new settings: start over, but keep the answer cache (never pay twice)
            for suffix in ("", ".skipped", ".failures", ".torn"):
                Path(f"{out}{suffix}").unlink(missing_ok=True)
        summary = Generator(self.recipe.generate, out).run(read_tasks(self.path("tasks.jsonl")))
        if summary.failed:
            raise PrefkitError(f"{summary.failed} tasks failed after every retry (listed in {summary.failures_file}); "
                             "run again to retry them")
        return {"pairs": summary.pairs + summary.already_done - summary.skipped, "skipped": summary.skipped}

    def _run_filter(self, same_key: bool) -> dict[str, Any]:
        from prefkit.filters.pipeline import run_filters

        source = self.path("candidates.jsonl")
        rows = read_jsonl(source)
        result = run_filters(rows, self.recipe.filter)
        write_jsonl(self.path("curated.jsonl"), result.kept)
        write_jsonl(self.path("curated.dropped.jsonl"), result.dropped)
        write_json(self.path("filter-report.json"), result.report())
        return {"kept": len(result.kept), "dropped": len(result.dropped)}

    def _run_review(self, same_key: bool) -> dict[str, Any]:
        if self.recipe.review.mode == "argilla":
            return self._run_argilla_review()
        rows = read_jsonl(self.path("curated.jsonl"))
        if self.recipe.review.mode == "tui":
            from rich.console import Console

            from prefkit.review.tui import review

            console = Console()
            counts = review(rows, self.path("reviewed.jsonl"), lambda prompt: console.input(prompt), console.print)
            decided = sum(counts.values())
            if decided < len(rows):
                raise PrefkitError(f"review stopped with {decided} of {len(rows)} pairs decided; run again to go on "
                                   "(every answer so far is saved)")
            return {"pairs": len(read_jsonl(self.path("reviewed.jsonl"), allow_empty=True)), **counts}
        from prefkit.review.auto import auto_review

        rows, counts = auto_review(rows)
        write_jsonl(self.path("reviewed.jsonl"), rows)
        return {"pairs": len(rows), **{k: v for k, v in counts.items() if v}}

    def _run_argilla_review(self) -> dict[str, Any]:
        """Push once per curated file, then pull when every pair of it is reviewed (or stop and say how to go
        on). Only this run's pairs count: a dataset may also hold pairs pushed by earlier runs."""
        from prefkit.review.argilla_queue import pull, push

        review, curated = self.recipe.review, self.path("curated.jsonl")
        name = review.dataset or self.recipe.name or self.recipe_path.stem
        rows = read_jsonl(curated)
        ids = {row["id"] for row in rows}
        marker = self.path("review-push.json")
        pushed = {"curated": file_hash(curated), "dataset": name, "workspace": review.workspace,
                  "annotators_per_pair": review.annotators_per_pair, "url": self.argilla.api_url}
        previous = json.loads(marker.read_text()) if marker.exists() else None
        if previous is None or {k: previous.get(k) for k in pushed} != pushed:
            result = push(rows, self.argilla, name, review.workspace, review.annotators_per_pair)
            previous = {**pushed, "review_url": result["url"], "pairs": result["pairs"]}
            write_json(marker, previous)
            self.log(f"pushed {result['pairs']} pairs to Argilla dataset '{name}' ({result['added']} new)")
        while True:
            result = pull(self.argilla, name, review.workspace)
            kept = [row for row in result.kept if row["id"] in ids]
            dropped = [row for row in result.dropped if row["id"] in ids]
            if len(kept) + len(dropped) >= len(ids):
                break
            message = (f"{len(kept) + len(dropped)} of {len(ids)} pairs reviewed in '{name}' "
                       f"({previous['review_url']})")
            if not review.wait:
                raise ReviewPending(f"{message}; when reviewers are done, run the same `prefkit run` command again "
                                    "to pull their answers (or set review.wait: true)")
            self.log(f"waiting for reviewers: {message}")
            time.sleep(review.poll_seconds)
        write_jsonl(self.path("reviewed.jsonl"), kept)
        write_jsonl(self.path("reviewed.dropped.jsonl"), dropped)
        write_json(self.path("review-report.json"), {"counts": dict(result.counts), "agreement": result.agreement})
        return {"pairs": len(kept), "dropped": len(dropped),
                **({"fleiss kappa": result.agreement["fleiss_kappa"]}
                   if result.agreement.get("fleiss_kappa") is not None else {})}

    def _run_dpo(self, same_key: bool) -> dict[str, Any]:
        from prefkit.train.dpo import train

        dpo = self.recipe.dpo
        if dpo.base_model == "demo":
            self._ensure_demo_model()
        adapter = self.path("adapter")
        if adapter.exists():
            shutil.rmtree(adapter)  # stale checkpoints from other settings must not be resumed
        summary = train(self.dpo_config, str(dpo.config), quiet=self.quiet)
        accuracy = summary.get("eval", {}).get("final", {}).get("rewards/accuracies")
        return {"steps": summary.get("steps"), "pairs": summary["data"]["train"],
                **({"eval accuracy": round(accuracy, 3)} if accuracy is not None else {})}

    def _ensure_demo_model(self) -> None:
        from prefkit.generate import read_tasks
        from prefkit.train.demo_model import build_demo_model

        settings = self.recipe.dpo.demo_model
        target = self.path("demo-model")
        marker = target / "prefkit-demo.json"
        key = content_hash(settings.model_dump(), file_hash(self.path("tasks.jsonl")))
        if marker.exists() and json.loads(marker.read_text()).get("key") == key:
            return
        if target.exists():
            shutil.rmtree(target)
        build_demo_model(target, read_tasks(self.path("tasks.jsonl")), epochs=settings.epochs,
                         sloppy_share=settings.sloppy_share, hidden_size=settings.hidden_size, layers=settings.layers,
                         learning_rate=settings.learning_rate, seed=settings.seed, quiet=self.quiet)
        marker.write_text(json.dumps({"key": key}))

    def _run_eval(self, same_key: bool) -> dict[str, Any]:
        from prefkit.evaluate import ModelSpec, evaluate
        from prefkit.generate import read_tasks

        config = self.recipe.eval
        tasks = read_tasks(self.path("eval-tasks.jsonl"))[: config.limit]  # limit None keeps them all
        models = [ModelSpec("before", str(self.dpo_config.model)), ModelSpec("after", str(self.path("adapter")))]
        report = evaluate(models, tasks, config.format, self.path("eval"), max_new_tokens=config.max_new_tokens,
                          temperature=config.temperature, batch_size=config.batch_size, seed=config.seed,
                          samples=config.samples)
        before, after = report["models"]["before"], report["models"]["after"]
        return {"format-valid": f"{before['format_valid']['mean']:.2f} -> {after['format_valid']['mean']:.2f}",
                "filler": f"{before['filler']['mean']:.2f} -> {after['filler']['mean']:.2f}"}
