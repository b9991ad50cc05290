"""`prefkit eval`: generate the next turn for held-out tasks with each model and score every turn with
the same rules as `prefkit filter`; report rates with bootstrap 95% intervals and the differences."""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from prefkit.config import ConfigPath
from prefkit.errors import ConfigError, InputError
from prefkit.formats import ActionSpec, parse_turn
from prefkit.jsonl import write_json, write_jsonl
from prefkit.outputs import check_outputs, output_folder
from prefkit.privacy import redact_url
from prefkit.scoring import Scorer, VerbosityConfig, previous_assistant
from prefkit.stage import Output, Stage, StageContext
from prefkit.teacher.client import split_openai_target

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

# format_valid is both answers of the parse at once: the benchmark's parser accepts the turn (accepted) and the
# turn keeps prefkit's stricter rules (disciplined), which is what a chosen turn must be. The disciplined rate is
# taken over the accepted turns (a rejected turn has nothing the discipline rules could judge).
RATE_METRICS = ("format_valid", "accepted", "disciplined", "filler", "repeated_action", "reference_agreement")
METRICS = (*RATE_METRICS, "thought_tokens")
LABELS = {
    "format_valid": "format-valid rate",
    "accepted": "accepted by the benchmark",
    "disciplined": "disciplined (of accepted)",
    "filler": "filler rate",
    "repeated_action": "repeated-action rate",
    "reference_agreement": "agreement with reference action",
    "thought_tokens": "mean thought tokens",
    "success": "task success rate",
    "turns": "turns per episode",
    "tokens": "completion tokens per episode",
}
# With an environment: one row an episode, its turns' measures averaged over the episode.
ENV_RATE_METRICS = ("success", "format_valid", "accepted", "disciplined", "filler")
ENV_METRICS = (*ENV_RATE_METRICS, "thought_tokens", "turns", "tokens")


class EvalConfig(BaseModel):
    """Settings of `prefkit eval` (the `eval:` section of a recipe, which compares the dpo stage's base model,
    `before`, with its adapter, `after`)."""

    model_config = ConfigDict(extra="forbid")

    format: str | None = Field(
        None, description="Format the turns must follow (react, alfworld, ...); with --env, the environment's."
    )
    env: Literal["dbbench"] | None = Field(
        None, description="Play whole episodes in this environment and measure task success (--tasks: its tasks)."
    )
    engine: Literal["mariadb", "sqlite"] = Field("mariadb", description="With --env dbbench: the SQL engine.")
    db_url: str | None = Field(None, description="With --env dbbench: mysql://USER:PASSWORD@HOST:PORT to use.")
    max_round: int = Field(5, ge=1, description="With --env dbbench: most statements an episode runs.")
    concurrency: int = Field(16, ge=1, description="With --env: episodes in play at once.")
    tasks: ConfigPath | None = Field(
        None, description="In a recipe, with env: the benchmark's task file (the command takes --tasks)."
    )
    temperature: float = Field(0.0, ge=0, description="Sampling temperature (0 = greedy).")
    max_new_tokens: int = Field(96, ge=1, description="Most tokens a generated turn may have.")
    batch_size: int = Field(16, ge=1, description="Local generation batch size.")
    limit: int | None = Field(None, ge=1, description="Only the first N tasks.")
    samples: int = Field(1, ge=1, description="Turns sampled per task (averaged per task; needs temperature > 0).")
    seed: int = Field(0, description="Sampling and bootstrap seed.")
    max_prompt_tokens: int = Field(2048, ge=1, description="Longest context given to a local model (its end).")

    @model_validator(mode="after")
    def _format_or_env(self) -> EvalConfig:
        if self.env is None and self.format is None:
            raise ValueError("give the format the turns must follow (--format), or an environment (--env)")
        if self.env is not None and self.format not in (None, "react"):
            raise ValueError(f"the {self.env} environment reads its turns in the react format, not {self.format}")
        return self


LABEL = re.compile(r"(?!\.)[A-Za-z0-9._-]{1,64}")


@dataclass
class ModelSpec:
    """A model to evaluate: a local checkpoint or adapter dir, or `openai:MODEL@BASE_URL`."""

    label: str
    target: str

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        """`[LABEL=]PATH` or `[LABEL=]openai:MODEL@BASE_URL`."""
        label, sep, target = text.partition("=")
        if not sep or target.startswith("//") or ":" in label:
            label, target = "", text
        if label and not LABEL.fullmatch(label):
            raise ConfigError(f"--model {label}=...: a label is letters, digits, '.', '-' and '_' (it names files)")
        if not label:  # the model's own name, made safe to use in file names
            label = target.split("@")[0].removeprefix("openai:") if target.startswith("openai:") else Path(target).name
            label = re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip(".-") or "model"
        return cls(label, target)

    @property
    def shown(self) -> str:
        """The target as it may be recorded and printed: a URL without its credentials."""
        if not self.target.startswith("openai:"):
            return self.target
        model, sep, url = self.target.partition("@")
        return f"{model}{sep}{redact_url(url)}" if sep else self.target

    @property
    def remote(self) -> tuple[str, str] | None:
        """(model, base_url) for an OpenAI-compatible target."""
        if not self.target.startswith("openai:"):
            return None
        try:
            return split_openai_target(self.target)
        except ValueError as error:
            raise ConfigError(f"--model {self.shown!r}: {error}") from None


def generate_local(
    target: str,
    tasks: list[dict],
    max_new_tokens: int,
    temperature: float,
    batch_size: int,
    seed: int,
    max_prompt_tokens: int,
) -> list[dict]:
    """Batched generation with transformers; an adapter dir is loaded onto its base model (`evaluate_file` has
    checked that the folder holds one or the other)."""
    import torch

    model, tokenizer = load_local(target)
    torch.manual_seed(seed)
    turns = []
    for start in range(0, len(tasks), batch_size):
        batch = tasks[start : start + batch_size]
        turns += generate_turns(
            model, tokenizer, [task["messages"] for task in batch], max_new_tokens, temperature, max_prompt_tokens
        )
    return turns


def load_local(target: str):
    """(model, tokenizer) of a checkpoint folder, or of an adapter folder on its base model; left padding."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(target)
    if (path / "adapter_config.json").exists():
        from peft import PeftModel

        base = base_of(path)
        try:
            base_model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        except OSError:
            raise InputError(f"cannot load the base model {base!r} this adapter names", target) from None
        model = PeftModel.from_pretrained(base_model, str(path))
    else:
        try:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        except (OSError, ValueError) as error:
            raise InputError(
                f"not a model checkpoint or adapter folder ({str(error).splitlines()[0][:120]})", target
            ) from None
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.eval()
    return model, tokenizer


def generate_turns(
    model,
    tokenizer,
    conversations: list[list[dict]],
    max_new_tokens: int,
    temperature: float,
    max_prompt_tokens: int,
    usage: list[tuple[int, int]] | None = None,
) -> list[dict]:
    """One generated assistant message per conversation, in one batch (each context cut to its last
    `max_prompt_tokens` tokens); `usage` gets (prompt tokens, generated tokens) of each."""
    import torch

    turns = []
    if conversations:
        prompts = []
        for messages in conversations:
            ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
            ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
            prompts.append(ids[-max_prompt_tokens:])
        width = max(len(ids) for ids in prompts)
        input_ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(ids)) + ids for ids in prompts])
        attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in prompts])
        with torch.no_grad():
            output = model.generate(
                input_ids=input_ids,
                attention_mask=attention,
                max_new_tokens=max_new_tokens,
                do_sample=temperature > 0,
                temperature=temperature if temperature > 0 else None,
                top_p=None,
                top_k=None,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        for ids, row in zip(prompts, output[:, width:]):
            turns.append({"role": "assistant", "content": tokenizer.decode(row, skip_special_tokens=True).strip()})
            if usage is not None:
                usage.append((len(ids), int((row != tokenizer.pad_token_id).sum())))
    return turns


def generate_remote(
    model: str,
    base_url: str,
    tasks: list[dict],
    max_new_tokens: int,
    temperature: float,
    cache_path: Path,
    samples: int = 1,
) -> list[dict]:
    """The next turns from an OpenAI-compatible server, through the same client as `prefkit generate`."""
    from prefkit.teacher.cache import ResponseCache
    from prefkit.teacher.client import Teacher, TeacherConfig

    config = TeacherConfig(
        base_url=base_url, model=model, temperature=temperature, max_tokens=max_new_tokens, concurrency=8
    )

    async def run() -> list[dict]:
        cache = ResponseCache(cache_path)
        try:
            async with Teacher(config, cache) as teacher:
                await teacher.preflight()
                answers = await asyncio.gather(*(teacher.complete(task["messages"], n=samples) for task in tasks))
        finally:
            cache.close()
        return [answer.message for per_task in answers for answer in per_task]

    return asyncio.run(run())


def score_turns(tasks: list[dict], turns: list[dict], format_name: str, scorer: Scorer) -> list[dict]:
    """Per-turn measures: validity, filler, thought tokens, repeated action, agreement with the reference."""
    rows = []
    for task, turn in zip(tasks, turns):
        spec = ActionSpec.of((task.get("meta") or {}).get("action_spec"))
        score = scorer.score(format_name, turn, spec, previous_assistant(task["messages"]))
        reference = (task.get("meta") or {}).get("reference")
        agreement = None
        if reference:
            expected = parse_turn(format_name, reference, spec)
            if expected.action is not None:
                agreement = float(score.parsed.action is not None and score.parsed.action.key == expected.action.key)
        rows.append(
            {
                "task_id": task["id"],
                "turn": turn,
                "violations": score.parsed.codes,
                "executed": score.parsed.to_dict()["executed"],
                "format_valid": float(score.parsed.valid),
                "accepted": float(score.parsed.accepted),
                # judged on the turns the benchmark takes: of those, how many keep prefkit's stricter rules
                "disciplined": float(score.parsed.disciplined) if score.parsed.accepted else None,
                "filler": float(bool(score.filler)),
                "thought_tokens": float(score.thought_tokens),
                "repeated_action": float(score.repeats_previous_action),
                "reference_agreement": agreement,
            }
        )
    return rows


def per_task(rows: list[dict], samples: int) -> list[dict]:
    """Average the measures of each task's samples, so intervals resample tasks, not correlated samples."""
    if samples == 1:
        return rows
    merged = []
    for start in range(0, len(rows), samples):
        group = rows[start : start + samples]
        row = {
            "task_id": group[0]["task_id"],
            "turns": [g["turn"] for g in group],
            "violations": [g["violations"] for g in group],
            "executed": [g["executed"] for g in group],
        }
        for metric in METRICS:
            values = [g[metric] for g in group if g[metric] is not None]
            row[metric] = sum(values) / len(values) if values else None
        merged.append(row)
    return merged


def bootstrap(values: np.ndarray, resamples: int, rng: np.random.Generator) -> tuple[float, float]:
    """95% percentile interval of the mean."""
    import numpy as np

    if len(values) == 0:
        return float("nan"), float("nan")
    index = rng.integers(0, len(values), size=(resamples, len(values)))
    means = values[index].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def summarise(
    scored: dict[str, list[dict]], resamples: int = 2000, seed: int = 0, measures: tuple[str, ...] = METRICS
) -> dict[str, Any]:
    """Means with intervals per model, and paired differences of each model against the first and, with three
    or more models (a recipe's DPO variants), of each pair of the later ones."""
    import numpy as np

    rng = np.random.default_rng(seed)
    labels = list(scored)
    out: dict[str, Any] = {"models": {}, "differences": {}}
    for label in labels:
        metrics = {}
        for metric in measures:
            values = np.array([row[metric] for row in scored[label] if row[metric] is not None], dtype=float)
            low, high = bootstrap(values, resamples, rng)
            metrics[metric] = {
                "mean": float(values.mean()) if len(values) else None,
                "low": low,
                "high": high,
                "n": int(len(values)),
            }
        out["models"][label] = metrics
    for first, label in itertools.combinations(labels, 2):
        differences = {}
        for metric in measures:
            pairs = [
                (a[metric], b[metric])
                for a, b in zip(scored[first], scored[label])
                if a[metric] is not None and b[metric] is not None
            ]
            if not pairs:
                continue
            delta = np.array([b - a for a, b in pairs], dtype=float)
            low, high = bootstrap(delta, resamples, rng)
            differences[metric] = {"mean": float(delta.mean()), "low": low, "high": high, "n": len(pairs)}
        out["differences"][f"{label} - {first}"] = differences
    return out


def write_report(out_dir: Path, report: dict[str, Any]) -> None:
    """report.json, report.md and chart.png."""
    write_json(out_dir / "report.json", report)
    (out_dir / "report.md").write_text(markdown(report), encoding="utf-8")
    chart(report, out_dir / "chart.png")


def _cell(entry: dict) -> str:
    if entry.get("mean") is None:
        return "-"
    return f"{entry['mean']:.3f} [{entry['low']:.3f}, {entry['high']:.3f}]"


def markdown(report: dict[str, Any]) -> str:
    """The side-by-side table, with differences, as Markdown (with three or more models the paired
    differences get a table of their own: a row per pair)."""
    labels = list(report["models"])
    diffs = list(report["differences"])
    inline = diffs if len(diffs) <= 1 else []
    measures = tuple(report.get("measures") or METRICS)
    where = (
        f"environment: `{report['env']}` on `{report['engine']}`, whole episodes, each turn's measures averaged "
        "over its episode"
        if report.get("env")
        else f"format: `{report['format']}`"
    )
    lines = [
        f"Tasks: {report['tasks']} ({report.get('samples_per_task', 1)} samples each, averaged per task); "
        f"{where}; sampling temperature {report['temperature']}; "
        "mean [95% bootstrap interval over tasks]. A turn is format-valid when the benchmark's own parser "
        "accepts it and it is disciplined (one action, nothing after it, canonical labels).",
        "",
        "| measure | " + " | ".join(labels) + "".join(f" | {d}" for d in inline) + " |",
        "|---" * (1 + len(labels) + len(inline)) + "|",
    ]
    for metric in measures:
        cells = [_cell(report["models"][label][metric]) for label in labels]
        cells += [_cell(report["differences"][d].get(metric, {})) for d in inline]
        lines.append(f"| {LABELS[metric]} | " + " | ".join(cells) + " |")
    if not inline and diffs:
        lines += ["", "Paired differences (the same tasks, model minus model):", ""]
        lines.append("| difference | " + " | ".join(LABELS[m] for m in measures) + " |")
        lines.append("|---" * (1 + len(measures)) + "|")
        for d in diffs:
            cells = " | ".join(_cell(report["differences"][d].get(m, {})) for m in measures)
            lines.append(f"| {d} | {cells} |")
    if report.get("agentbench"):
        names = list(next(iter(report["agentbench"].values())))
        lines += ["", "AgentBench's own metrics (all episodes, as its `calculate_overall` computes them):", ""]
        lines.append("| metric | " + " | ".join(labels) + " |")
        lines.append("|---" * (1 + len(labels)) + "|")
        for name in names:
            values = " | ".join(f"{report['agentbench'][label][name]:.3f}" for label in labels)
            lines.append(f"| {name} | {values} |")
    return "\n".join(lines) + "\n"


def chart(report: dict[str, Any], path: Path) -> None:
    """Grouped bars with 95% intervals for the rates, and thought tokens on their own axis."""
    from prefkit.filters.plots import pyplot

    plt = pyplot()

    labels = list(report["models"])
    rate_metrics = ENV_RATE_METRICS if report.get("env") else RATE_METRICS
    figure, (rates, tokens) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [3, 1]})
    width = 0.8 / len(labels)
    for number, label in enumerate(labels):
        metrics = report["models"][label]
        means = [metrics[m]["mean"] if metrics[m]["mean"] is not None else 0 for m in rate_metrics]
        errors = [
            [
                max(0, mean - (metrics[m]["low"] if metrics[m]["mean"] is not None else 0))
                for m, mean in zip(rate_metrics, means)
            ],
            [
                max(0, (metrics[m]["high"] if metrics[m]["mean"] is not None else 0) - mean)
                for m, mean in zip(rate_metrics, means)
            ],
        ]
        positions = [i + number * width for i in range(len(rate_metrics))]
        rates.bar(positions, means, width, yerr=errors, capsize=3, label=label)
        thought = metrics["thought_tokens"]
        tokens.bar(
            [number],
            [thought["mean"] or 0],
            0.6,
            yerr=[
                [max(0, (thought["mean"] or 0) - thought["low"])],
                [max(0, thought["high"] - (thought["mean"] or 0))],
            ],
            capsize=3,
        )
    rates.set_xticks([i + width * (len(labels) - 1) / 2 for i in range(len(rate_metrics))])
    short = {"accepted": "accepted", "disciplined": "disciplined", "repeated_action": "repeated action"}
    short["success"] = "task success"
    short |= {"format_valid": "format-valid", "filler": "filler", "reference_agreement": "agrees with ref."}
    rates.set_xticklabels([short[m] for m in rate_metrics], rotation=15)
    rates.set_ylim(0, 1.05)
    rates.set_title("rates (95% bootstrap intervals)")
    rates.legend()
    tokens.set_xticks(range(len(labels)))
    tokens.set_xticklabels(labels, rotation=20)
    tokens.set_title("mean thought tokens")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def evaluate(
    models: list[ModelSpec],
    tasks: list[dict],
    format_name: str,
    out_dir: Path,
    max_new_tokens: int = 96,
    temperature: float = 0.0,
    batch_size: int = 16,
    seed: int = 0,
    max_prompt_tokens: int = 2048,
    verbosity: VerbosityConfig | None = None,
    progress=None,
    samples: int = 1,
) -> dict[str, Any]:
    """Generate, score, summarise and write everything under `out_dir`; returns the report."""
    if not models:
        raise ConfigError("give at least one --model")
    labels = [model.label for model in models]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"model labels must differ ({', '.join(labels)}); name them LABEL=PATH")
    for model in models:
        _ = model.remote  # validates the openai: form before any work
    scorer = Scorer(verbosity)
    out_dir.mkdir(parents=True, exist_ok=True)
    scored: dict[str, list[dict]] = {}
    if samples > 1 and temperature == 0:
        raise ConfigError("several samples per task need a temperature above 0")
    expanded = [task for task in tasks for _ in range(samples)]
    for model in models:
        remote = model.remote
        if remote:
            turns = generate_remote(
                remote[0],
                remote[1],
                tasks,
                max_new_tokens,
                temperature,
                out_dir / f"cache-{model.label}.sqlite",
                samples,
            )
        else:
            turns = generate_local(
                model.target, expanded, max_new_tokens, temperature, batch_size, seed, max_prompt_tokens
            )
        scored[model.label] = per_task(score_turns(expanded, turns, format_name, scorer), samples)
        write_jsonl(out_dir / f"turns-{model.label}.jsonl", scored[model.label])
        if progress:
            progress(model.label)
    report = {
        "tasks": len(tasks),
        "samples_per_task": samples,
        "format": format_name,
        "temperature": temperature,
        "models_evaluated": {m.label: m.shown for m in models},
        **summarise(scored, seed=seed),
    }
    write_report(out_dir, report)
    return report


def evaluate_env(
    config: EvalConfig, models: list[ModelSpec], tasks: Path, out_dir: Path, ctx: StageContext
) -> dict[str, Any]:
    """The same episodes of `config.env` played by each model (trajectories-LABEL.jsonl, resumable), graded as
    the benchmark grades them; success and each episode's turn measures side by side, with intervals over
    tasks and paired differences, and the benchmark's own metrics per model."""
    from prefkit.rollout import RolloutConfig, rollout_file

    scorer = Scorer(VerbosityConfig())
    played: dict[str, dict[tuple[str, int], dict]] = {}
    agentbench: dict[str, dict[str, float]] = {}
    engine = config.engine
    for model in models:
        rollout = RolloutConfig(
            env=config.env,
            engine=config.engine,
            db_url=config.db_url,
            max_round=config.max_round,
            policy=model.target,
            samples=config.samples,
            temperature=config.temperature,
            max_tokens=config.max_new_tokens,
            concurrency=config.concurrency,
            limit=config.limit,
            tasks=tasks,
        )
        trajectories = out_dir / f"trajectories-{model.label}.jsonl"
        report = rollout_file(rollout, trajectories, ctx=StageContext(resume=ctx.resume, source=ctx.source))
        played[model.label] = {(row["task_id"], row["sample"]): row for row in _read_records(trajectories)}
        agentbench[model.label] = report["metrics"]
        engine = report.get("engine", engine)
        ctx.say(f"played {model.label}: success {report['success_rate']:.3f}")
    # Paired differences compare the same episodes: those every model played (a replay file may hold fewer).
    common = sorted(set.intersection(*(set(records) for records in played.values())))
    if not common:
        raise InputError("the models played no episode in common; check the replay files' task ids", str(tasks))
    scored: dict[str, list[dict]] = {}
    for label, records in played.items():
        if len(records) > len(common):
            ctx.say(f"{label}: {len(records) - len(common)} episodes left out (not played by every model)")
        by_task: dict[str, list[dict]] = {}
        for key in common:  # a task's samples averaged: intervals resample tasks
            by_task.setdefault(key[0], []).append(episode_measures(records[key], scorer))
        scored[label] = [_mean_row(group) for group in by_task.values()]
    first = next(iter(scored.values()))
    report = {
        "tasks": len(first),
        "samples_per_task": config.samples,
        "env": config.env,
        "engine": config.engine,
        "format": "react",
        "temperature": config.temperature,
        "measures": list(ENV_METRICS),
        "models_evaluated": {m.label: m.shown for m in models},
        **summarise(scored, seed=config.seed, measures=ENV_METRICS),
        "agentbench": agentbench,
    }
    write_report(out_dir, report)
    return report


def _mean_row(group: list[dict]) -> dict[str, Any]:
    """One task's episodes as one row: each measure averaged over the samples that have it."""
    row: dict[str, Any] = {"task_id": group[0]["task_id"], "samples": len(group)}
    for measure in ENV_METRICS:
        values = [episode[measure] for episode in group if episode[measure] is not None]
        row[measure] = sum(values) / len(values) if values else None
    return row


def _read_records(path: Path) -> list[dict]:
    from prefkit.jsonl import iter_jsonl

    return [row for _, row in iter_jsonl(path)]


def episode_measures(record: dict, scorer: Scorer) -> dict[str, Any]:
    """One episode's row: success, and its assistant turns' format and verbosity measures averaged."""
    spec = ActionSpec(style="dbbench")
    turns = [message for message in record["messages"][3:] if message["role"] == "assistant"]
    scores = [scorer.score("react", message, spec) for message in turns]
    accepted = [score for score in scores if score.parsed.accepted]

    def mean(values: list[float]) -> float | None:
        return sum(values) / len(values) if values else None

    return {
        "task_id": record["task_id"],
        "sample": record["sample"],
        "status": record["status"],
        "success": float(bool(record["success"])),
        "format_valid": mean([float(score.parsed.valid) for score in scores]),
        "accepted": mean([float(score.parsed.accepted) for score in scores]),
        "disciplined": mean([float(score.parsed.disciplined) for score in accepted]),
        "filler": mean([float(bool(score.filler)) for score in scores]),
        "thought_tokens": mean([float(score.thought_tokens) for score in scores]),
        "turns": float(len(turns)),
        "tokens": float(record["usage"]["completion_tokens"]),
    }


def base_of(adapter: Path) -> str:
    """The base model a LoRA adapter folder was trained on."""
    import json

    config = Path(adapter) / "adapter_config.json"
    try:
        return json.loads(config.read_text())["base_model_name_or_path"]
    except (OSError, ValueError, KeyError):
        raise InputError("not a LoRA adapter folder (no readable adapter_config.json)", str(adapter)) from None


def adapter_models(adapter: Path) -> list[ModelSpec]:
    """What a recipe's eval compares: the base (`before`) and the adapter (`after`), or with DPO variants
    (ADAPTER/variants.json) the base and every variant under its own name."""
    listing = adapter / "variants.json"
    if not listing.exists():
        return [ModelSpec("before", base_of(adapter)), ModelSpec("after", str(adapter))]
    from prefkit.jsonl import read_json

    names = list(read_json(listing, "the dpo stage's list of variants", "run the dpo stage again")["variants"])
    if not names:
        raise InputError("names no variant; run the dpo stage again", str(listing))
    return [ModelSpec("before", base_of(adapter / names[0])), *(ModelSpec(n, str(adapter / n)) for n in names)]


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
    from prefkit.formats import get_parser
    from prefkit.tasks import read_tasks
    from prefkit.train.progress import library_output

    ctx = ctx or StageContext()
    if config.format is not None:
        get_parser(config.format)
    if adapter is not None:
        models = adapter_models(Path(adapter))
    if not models:
        raise ConfigError("give at least one --model")
    labels = [model.label for model in models]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"model labels must differ ({', '.join(labels)}); name them LABEL=PATH")
    replays = [model for model in models if model.target.startswith("replay:")]
    if replays and config.env is None:
        raise ConfigError(f"--model {replays[0].target}: a replay file is graded by an environment; give --env")
    local = [Path(model.target) for model in models if model.remote is None and model not in replays]
    for path in local:  # before any work: a folder that holds no model would fail only after the first model ran
        if not path.exists():
            raise InputError("model path not found", str(path))
        if not ((path / "config.json").exists() or (path / "adapter_config.json").exists()):
            raise InputError(
                "not a model checkpoint or adapter folder (no config.json or adapter_config.json)", str(path)
            )
    replay_files = [Path(model.target[len("replay:") :]) for model in replays]
    check_outputs([tasks, *local, *replay_files], folders={"--out": out}, overwrite=ctx.overwrite)
    if local:
        from prefkit.train import require_train_extra

        require_train_extra()
    if config.env is not None:
        with library_output(ctx.verbose), output_folder(out):
            return evaluate_env(config, models, Path(tasks), Path(out), ctx)
    rows = read_tasks(tasks)[: config.limit]  # limit None keeps them all
    with library_output(ctx.verbose), output_folder(out):
        report = evaluate(
            models,
            rows,
            config.format,
            out,
            max_new_tokens=config.max_new_tokens,
            temperature=config.temperature,
            batch_size=config.batch_size,
            seed=config.seed,
            max_prompt_tokens=config.max_prompt_tokens,
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


def _interval(measure: dict[str, Any]) -> str:
    if measure.get("mean") is None:
        return "-"
    return f"{measure['mean']:.3f} [{measure['low']:.3f}, {measure['high']:.3f}]"


def model_rows(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """With three or more models (DPO variants), one run-table row a model: its rates with 95% intervals."""
    if len(report["models"]) <= 2:
        return {}
    return {
        label: {"format-valid": _interval(m["format_valid"]), "filler": _interval(m["filler"])}
        for label, m in report["models"].items()
    }


STAGE = Stage(
    "eval",
    EvalConfig,
    evaluate_file,
    inputs={"tasks": "eval-tasks", "adapter": "adapter"},
    outputs={"out": Output("report", "eval")},
    check=_check,
    counts=_counts,
)
