"""`prefkit dpo`: LoRA DPO with TRL's DPOTrainer. prefkit adds what TRL leaves to the user: data checks
against the model's own chat template, an eval split, LoRA defaults, NaN guarding, saving and a summary;
the training step itself is TRL's, unchanged."""

from __future__ import annotations

import gc
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from prefkit.errors import ConfigError, InputError, TrainingDiverged
from prefkit.jsonl import read_json, write_json
from prefkit.outputs import check_outputs, output_folder
from prefkit.stage import Output, Plan, Stage, StageContext
from prefkit.train.config import DPOStageConfig, check_dpo_config
from prefkit.train.data import (
    DataReport,
    check_pairs,
    load_pairs,
    mean_completion_tokens,
    measure_lengths,
    resolve_chat_template,
    split_pairs,
    to_dataset,
)
from prefkit.train.displacement import generation_check, guard_class
from prefkit.train.progress import attach_progress, library_output

log = logging.getLogger(__name__)

SUMMARY_METRICS = (
    "loss",
    "rewards/accuracies",
    "rewards/margins",
    "rewards/chosen",
    "rewards/rejected",
    "logps/chosen",
    "logps/rejected",
)


def ensure_model(config: DPOStageConfig) -> None:
    """Build the tiny model the config describes when its path does not exist yet."""
    path = Path(config.model)
    if path.exists() or config.tiny_model is None:
        return
    from prefkit.jsonl import read_jsonl
    from prefkit.train.tiny import build_tiny_model, texts_of_pairs

    tiny = config.tiny_model
    texts = list(texts_of_pairs(read_jsonl(tiny.texts_from)))
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    build_tiny_model(
        staging,
        texts,
        hidden_size=tiny.hidden_size,
        layers=tiny.layers,
        heads=tiny.heads,
        kv_heads=tiny.kv_heads,
        intermediate_size=tiny.intermediate_size,
        vocab_size=tiny.vocab_size,
        seed=tiny.seed,
    )
    try:
        os.rename(staging, path)  # atomic; another rank that got there first wins, with identical content
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)


def prepare(config: DPOStageConfig, source: str) -> tuple[Any, Any, Any, DataReport]:
    """Everything that can fail before the model loads: TRL args, tokenizer, data checks, split."""
    import torch
    from trl import DPOConfig

    if config.load_in_4bit and not torch.cuda.is_available():
        raise ConfigError(f"{source}: load_in_4bit needs a CUDA GPU (bitsandbytes); none is present")
    on_gpu = torch.cuda.is_available()
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    eval_on = bool(config.eval_dataset) or config.eval_split > 0
    settings = config.trl_settings
    arguments = {
        "save_strategy": "steps",
        "eval_strategy": ("steps" if settings.get("eval_steps") else "epoch") if eval_on else "no",
        # DPOConfig's own defaults (bf16, gradient checkpointing) do not suit a CPU; the YAML may still set them.
        "bf16": on_gpu and torch.cuda.is_bf16_supported(),
        **_no_checkpointing(),
        "use_cpu": not on_gpu,
        **({"ddp_backend": "gloo"} if distributed and not on_gpu else {}),
        **settings,
    }
    try:
        args = DPOConfig(output_dir=str(config.output_dir), **arguments)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{source}: TRL rejected the settings: {str(error).splitlines()[0]}") from None

    rows = load_pairs(config.dataset)
    check_pairs(rows, ", ".join(map(str, config.dataset)))
    eval_rows = load_pairs(config.eval_dataset) if config.eval_dataset else None
    if eval_rows is not None:
        check_pairs(eval_rows, ", ".join(map(str, config.eval_dataset)))

    ensure_model(config)
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(config.model)
    except OSError as error:
        raise ConfigError(
            f"{source}: cannot load a tokenizer from model {config.model!r} ({str(error).splitlines()[0]})"
        ) from None
    resolve_chat_template(tokenizer, config.chat_template, source)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token

    report = DataReport(rows=len(rows) + len(eval_rows or []))
    usable = measure_lengths(rows, tokenizer, args.max_length, config.chat_template_kwargs, report)
    if eval_rows is not None:
        eval_rows = measure_lengths(eval_rows, tokenizer, args.max_length, config.chat_template_kwargs, report)
    unusable = report.prompt_fills_max_length + report.chosen_cut
    if report.rows and unusable / report.rows > config.max_truncated_share:
        raise InputError(
            f"{unusable} of {report.rows} pairs do not fit max_length={args.max_length} "
            f"({report.prompt_fills_max_length} prompts fill it, {report.chosen_cut} chosen turns would be "
            f"cut; longest pair {report.max_tokens} tokens): raise max_length or filter long pairs "
            f"(allowed share: max_truncated_share={config.max_truncated_share})"
        )
    if eval_rows is None:
        train_rows, eval_rows = split_pairs(usable, config.eval_split, args.seed)
    else:
        train_rows = usable
    if not train_rows:
        raise InputError("no pairs left to train on")
    report.train, report.eval = len(train_rows), len(eval_rows)
    report.completion_tokens = {"train": mean_completion_tokens(train_rows), "eval": mean_completion_tokens(eval_rows)}
    train = to_dataset(train_rows, config.chat_template_kwargs)
    evaluation = to_dataset(eval_rows, config.chat_template_kwargs) if eval_rows else None
    if evaluation is None:
        args.eval_strategy = "no"
    del rows, usable, train_rows, eval_rows
    gc.collect()  # hand the memory of the raw rows back before the model loads
    return args, tokenizer, (train, evaluation), report


def _no_checkpointing() -> dict[str, bool]:
    """Turn DPOConfig's default gradient checkpointing off, by whichever name this transformers uses."""
    from prefkit.train.config import dpo_config_fields

    name = "activation_checkpointing" if "activation_checkpointing" in dpo_config_fields() else "gradient_checkpointing"
    return {name: False}


def train(
    config: DPOStageConfig,
    source: str = "options",
    resume: bool = False,
    quiet: bool = False,
    verbose: bool = False,
    say: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train the adapter; returns the summary written to OUTPUT_DIR/training_summary.json. `say` prints the
    displacement guard's and the generation check's warnings (default: nothing)."""
    with library_output(verbose):
        return _train(config, source, resume, quiet, verbose, say or (lambda text: None))


def _train(
    config: DPOStageConfig, source: str, resume: bool, quiet: bool, verbose: bool, say: Callable[[str], None]
) -> dict[str, Any]:
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import DPOTrainer

    args, tokenizer, (train_set, eval_set), report = prepare(config, source)
    checkpoint = None
    if resume:
        from transformers.trainer_utils import get_last_checkpoint

        checkpoint = get_last_checkpoint(str(config.output_dir)) if config.output_dir.exists() else None
        if checkpoint is None:
            raise ConfigError(f"--resume: no checkpoint in {config.output_dir} to resume from")

    class NanGuard(TrainerCallback):
        # The Trainer hides NaN losses from its logs (logging_nan_inf_filter), so look at every measure.
        def on_log(self, args, state, control, logs=None, **kwargs):
            for key in ("loss", "grad_norm", "logps/chosen", "logps/rejected", "rewards/margins"):
                value = (logs or {}).get(key)
                if isinstance(value, float) and not math.isfinite(value):
                    raise TrainingDiverged(
                        f"training diverged: {key} became {value} at step {state.global_step}; "
                        f"lower learning_rate (now {args.learning_rate:g}) or beta, or check the data"
                    )

    load_kwargs: dict[str, Any] = {"dtype": torch.bfloat16 if args.bf16 else torch.float32}
    if config.load_in_4bit:
        from transformers import BitsAndBytesConfig

        load_kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
        )
    # A local base is recorded in the adapter by absolute path, so eval and merge find it from any folder.
    source_model = str(Path(config.model).resolve()) if Path(config.model).exists() else config.model
    model = AutoModelForCausalLM.from_pretrained(source_model, **load_kwargs)
    lora = LoraConfig(**{"task_type": "CAUSAL_LM", **config.lora_settings})
    guard = guard_class()(
        config.max_chosen_logp_drop,
        config.stop_on_displacement,
        float(args.beta),
        report.completion_tokens,
        eval_set is not None,
        config.output_dir,
        say,
    )
    # No ref_model: with a peft_config TRL uses the base with the adapter disabled as the reference.
    trainer = DPOTrainer(
        model=model,
        ref_model=None,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        processing_class=tokenizer,
        peft_config=lora,
        callbacks=[NanGuard(), guard],
    )
    attach_progress(trainer, "dpo", quiet, verbose)
    trainable = [name for name, p in trainer.model.named_parameters() if p.requires_grad]
    total = sum(p.numel() for p in trainer.model.parameters())
    try:
        trainer.train(resume_from_checkpoint=checkpoint)
        summary = None
        if trainer.is_world_process_zero():
            trainer.save_model(str(config.output_dir))
            tokenizer.save_pretrained(str(config.output_dir))
            summary = _summary(config, trainer, report, trainable, total)
            summary["displacement"] = guard.report()
            if config.generation_check:
                prompts = list((eval_set or train_set)["prompt"][: config.generation_check])
                check = generation_check(trainer.model, tokenizer, prompts, config.chat_template_kwargs)
                summary["generation_check"] = check
                if check["verdict"] != "ok":
                    say(
                        f"[yellow]warning: {check['collapsed']} of {check['samples']} sampled turns: {check['verdict']}"
                    )
            write_json(config.output_dir / "training_summary.json", summary)
        return summary or {}
    finally:
        _shutdown_distributed()


def _summary(config: DPOStageConfig, trainer: Any, report: DataReport, trainable: list[str], total: int) -> dict:
    history = trainer.state.log_history
    train_logs = [entry for entry in history if "loss" in entry and "eval_loss" not in entry]
    eval_logs = [entry for entry in history if "eval_loss" in entry]

    def pick(logs: list[dict], prefix: str = "") -> tuple[dict, dict]:
        final = {k: logs[-1][prefix + k] for k in SUMMARY_METRICS if logs and prefix + k in logs[-1]}
        best = {}
        for key in SUMMARY_METRICS:
            values = [entry[prefix + key] for entry in logs if prefix + key in entry]
            if values:
                best[key] = min(values) if key == "loss" else max(values)
        return final, best

    final, best = pick(train_logs)
    eval_final, eval_best = pick(eval_logs, "eval_")
    return {
        "config": config.model_dump(mode="json"),
        "data": report.as_dict(),
        "steps": trainer.state.global_step,
        "trainable_parameters": sum(p.numel() for n, p in trainer.model.named_parameters() if p.requires_grad),
        "total_parameters": total,
        "trainable_names": trainable,
        "train": {"final": final, "best": best},
        "eval": {"final": eval_final, "best": eval_best},
        "log_history": history,
    }


def _shutdown_distributed() -> None:
    """Leave the process group cleanly (a script that does not crashes at exit under torchrun)."""
    try:
        import torch.distributed as dist
    except ImportError:
        return
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def drop_torn_checkpoints(output_dir: Path) -> None:
    """After a failed run, remove the checkpoints it did not finish (transformers writes trainer_state.json
    last), so that --resume starts from a whole one; the finished ones are kept."""
    for folder in Path(output_dir).glob("checkpoint-*"):
        if folder.is_dir() and not (folder / "trainer_state.json").exists():
            shutil.rmtree(folder, ignore_errors=True)


def dpo_stage(
    config: DPOStageConfig,
    dataset: Path | None = None,
    output_dir: Path | None = None,
    model: Path | None = None,
    *,
    resume: bool = False,
    ctx: StageContext | None = None,
) -> dict[str, Any]:
    """Train on `dataset` into `output_dir` from `model` (each given one replaces the config's); returns the
    run-table counts, the whole summary under "summary"."""
    ctx = ctx or StageContext()
    changes = {"dataset": [dataset] if dataset else None, "output_dir": output_dir, "model": model and str(model)}
    config = config.model_copy(update={key: value for key, value in changes.items() if value is not None})
    check_dpo_config(config, ctx.source)
    base = Path(config.model) if config.model and Path(config.model).exists() else None
    check_outputs(
        [*config.dataset, *(config.eval_dataset or []), base],
        folders={"output_dir": config.output_dir},
        overwrite=ctx.overwrite or resume,
    )
    if config.variants:
        return _train_variants(config, resume, ctx)
    try:
        with output_folder(config.output_dir, keep_on_error=True):
            summary = train(config, ctx.source, resume=resume, quiet=ctx.quiet, verbose=ctx.verbose, say=ctx.say)
    except BaseException:
        if os.environ.get("RANK", "0") == "0":
            drop_torn_checkpoints(config.output_dir)
        raise
    if not summary:
        return {}  # not the main process
    return {"pairs": summary["data"]["train"], **_row(summary), "summary": summary}


def _train_variants(config: DPOStageConfig, resume: bool, ctx: StageContext) -> dict[str, Any]:
    """Each variant on the same pairs and seed into OUTPUT_DIR/NAME, in order; OUTPUT_DIR/variants.json names
    them for `prefkit eval`. A variant whose finished summary holds its very settings is not trained again."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Each training ends by leaving the process group, so several in one launch cannot share it.
        raise ConfigError(
            f"{ctx.source}: dpo variants train one after another in one process; under accelerate or torchrun "
            "train each variant as its own `prefkit dpo` (its settings in --set), then compare them with "
            "`prefkit eval --model NAME=DIR ...`"
        )
    rows: dict[str, dict[str, Any]] = {}
    summaries: dict[str, dict[str, Any]] = {}
    with output_folder(config.output_dir, keep_on_error=True):
        for name in config.variants or {}:
            variant = config.variant(name)
            done = variant.output_dir / "training_summary.json"
            previous = read_json(done, "a training summary", "remove it to train again") if done.exists() else None
            if previous is not None and previous.get("config") == variant.model_dump(mode="json"):
                summary = previous
                ctx.say(f"variant {name}: already trained")
            else:
                ctx.say(f"variant {name} ...")
                summary = dpo_stage(variant, resume=resume, ctx=replace(ctx, overwrite=True))["summary"]
            summaries[name] = summary
            rows[name] = _row(summary)
        write_json(
            config.output_dir / "variants.json",
            {"base": config.model, "variants": {name: config.variants[name] for name in summaries}},
        )
    return {"variants": len(summaries), "rows": rows, "summaries": summaries}


def _row(summary: dict[str, Any]) -> dict[str, Any]:
    """A training's row in the run table: steps, eval accuracy, and what the guards saw."""
    row: dict[str, Any] = {"steps": summary.get("steps")}
    accuracy = summary.get("eval", {}).get("final", {}).get("rewards/accuracies")
    if accuracy is not None:
        row["eval accuracy"] = round(accuracy, 3)
    displaced = (summary.get("displacement") or {}).get("first_displaced_step")
    row["displacement"] = f"from step {displaced}" if displaced is not None else "none"
    check = summary.get("generation_check")
    if check:
        row["sampled turns"] = (
            "ok" if check["verdict"] == "ok" else f"{check['collapsed']}/{check['samples']} collapsed"
        )
    return row


def _check(config: DPOStageConfig, source: str) -> None:
    from prefkit.train import require_train_extra

    require_train_extra()
    check_dpo_config(config, source, needs_paths=False)


def _plan(config: DPOStageConfig, plan: Plan) -> DPOStageConfig:
    """The base model comes from an earlier stage (demo_model) or from the section itself."""
    if "model" not in plan.inputs and not config.model:
        raise ConfigError(f"{plan.source}: missing required setting 'dpo.model' (or add a demo_model: section)")
    return config


STAGE = Stage(
    "dpo",
    DPOStageConfig,
    dpo_stage,
    inputs={"dataset": "pairs", "model": "model?"},
    outputs={"output_dir": Output("adapter", "adapter")},
    check=_check,
    plan=_plan,
)
