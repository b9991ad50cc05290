"""`prefkit demo-model`: a tiny Qwen3 trained from scratch (TRL SFTTrainer, CPU, a minute or two) on real
agent turns mixed with their corruptions, so that before DPO it produces both disciplined and sloppy
turns. A demonstration of the mechanism on a toy model, not a useful agent."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from prefkit.corruptions import corrupt_any
from prefkit.errors import InputError
from prefkit.formats import ActionSpec
from prefkit.outputs import check_outputs, output_folder
from prefkit.stage import Output, Stage, StageContext
from prefkit.train.progress import attach_progress, library_output
from prefkit.train.tiny import build_tiny_model, texts_of_pairs

SLOPPY_KINDS = ("filler", "format_break", "ramble", "two_actions")
HEADS = 4
BUNDLED = Path(__file__).resolve().parents[2] / "data" / "corpus" / "react" / "alfworld_3prompts.json"


class DemoModelConfig(BaseModel):
    """Settings of `prefkit demo-model` (the `demo_model:` section of a recipe, whose `dpo` stage then trains
    on it)."""

    model_config = ConfigDict(extra="forbid")

    epochs: float = Field(3.0, gt=0, description="SFT epochs.")
    sloppy_share: float = Field(0.5, ge=0, le=1, description="Share of SFT turns replaced by sloppy versions.")
    hidden_size: int = Field(128, ge=16, description=f"Hidden size (a multiple of {2 * HEADS}).")
    layers: int = Field(2, ge=1, description="Decoder layers.")
    learning_rate: float = Field(2e-3, gt=0, description="SFT learning rate.")
    seed: int = Field(0, description="Seed.")

    @field_validator("hidden_size")
    @classmethod
    def _fits_the_heads(cls, value: int) -> int:
        # 4 attention heads, each with an even size for the rotary embedding.
        if value % (2 * HEADS):
            raise ValueError(f"must be a multiple of {2 * HEADS} ({HEADS} attention heads of even size)")
        return value


def sft_rows(tasks: list[dict], sloppy_share: float, seed: int) -> list[dict]:
    """Prompt/completion rows: each task's real turn, or (with probability `sloppy_share`) a sloppy version."""
    rng = random.Random(seed)
    rows = []
    for task in tasks:
        reference = (task.get("meta") or {}).get("reference")
        if not reference or not task.get("format"):
            continue
        turn = reference
        if rng.random() < sloppy_share:
            spec = ActionSpec.of((task.get("meta") or {}).get("action_spec"))
            corrupted = corrupt_any(reference, task["format"], rng, spec, SLOPPY_KINDS)
            if corrupted:
                turn = corrupted[1]
        rows.append(
            {"prompt": task["messages"], "completion": [{"role": "assistant", "content": turn.get("content") or ""}]}
        )
    return rows


def build_demo_model(
    out_dir: str | Path,
    tasks: list[dict],
    epochs: float = 3.0,
    sloppy_share: float = 0.5,
    hidden_size: int = 128,
    layers: int = 2,
    max_length: int = 1024,
    learning_rate: float = 2e-3,
    seed: int = 0,
    quiet: bool = True,
    verbose: bool = False,
) -> Path:
    """Build the tokenizer and random model, train it with SFTTrainer, save to `out_dir`."""
    import tempfile

    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    out_dir = Path(out_dir)
    rows = sft_rows(tasks, sloppy_share, seed)
    if not rows:
        raise InputError("no task carries a reference turn (meta.reference) to learn from")
    with tempfile.TemporaryDirectory() as scratch:
        base = build_tiny_model(
            Path(scratch) / "base",
            texts_of_pairs([{"messages": r["prompt"] + r["completion"]} for r in rows]),
            hidden_size=hidden_size,
            layers=layers,
            heads=HEADS,
            kv_heads=2,
            intermediate_size=hidden_size * 3,
            seed=seed,
        )
        tokenizer = AutoTokenizer.from_pretrained(base)
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        args = SFTConfig(
            output_dir=scratch,
            num_train_epochs=epochs,
            per_device_train_batch_size=8,
            learning_rate=learning_rate,
            lr_scheduler_type="cosine",
            warmup_steps=0.05,
            max_length=max_length,
            logging_steps=10,
            save_strategy="no",
            report_to=["none"],
            seed=seed,
            use_cpu=True,
            bf16=False,
            activation_checkpointing=False,
        )
        with library_output(verbose):
            trainer = SFTTrainer(
                model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer
            )
            attach_progress(trainer, "demo model (SFT)", quiet, verbose)
            trainer.train()
        out_dir.mkdir(parents=True, exist_ok=True)
        trainer.model.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
    return out_dir


def demo_model_stage(
    config: DemoModelConfig, tasks: Path | None, out: Path, *, ctx: StageContext | None = None
) -> dict[str, Any]:
    """Train the demo model on the tasks in `tasks` (default: the bundled ALFWorld ReAct turns) into `out`."""
    from prefkit.records import context_chars
    from prefkit.tasks import load_tasks, read_tasks
    from prefkit.train import require_train_extra

    require_train_extra()
    ctx = ctx or StageContext()
    check_outputs([tasks], folders={"--out": out}, overwrite=ctx.overwrite)
    if tasks is not None:
        rows = read_tasks(tasks)
    else:
        rows = [t for t in load_tasks(BUNDLED, "alfworld-react") if context_chars(t["messages"]) <= 2000]
    with output_folder(out):
        build_demo_model(
            out,
            rows,
            epochs=config.epochs,
            sloppy_share=config.sloppy_share,
            hidden_size=config.hidden_size,
            layers=config.layers,
            learning_rate=config.learning_rate,
            seed=config.seed,
            quiet=ctx.quiet,
            verbose=ctx.verbose,
        )
    return {"tasks": len(rows)}


STAGE = Stage(
    "demo_model",
    DemoModelConfig,
    demo_model_stage,
    inputs={"tasks": "tasks"},
    outputs={"out": Output("model", "demo-model")},
)
