"""`prefkit demo-model`: a tiny Qwen3 trained from scratch (TRL SFTTrainer, CPU, a minute or two) on real
agent turns mixed with their corruptions, so that before DPO it produces both disciplined and sloppy
turns. A demonstration of the mechanism on a toy model, not a useful agent."""

from __future__ import annotations

import random
from pathlib import Path

from prefkit.corruptions import corrupt_any
from prefkit.formats import ActionSpec
from prefkit.train.tiny import build_tiny_model, texts_of_pairs

SLOPPY_KINDS = ("filler", "format_break", "ramble", "two_actions")


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
            spec = ActionSpec.model_validate((task.get("meta") or {}).get("action_spec") or {})
            corrupted = corrupt_any(reference, task["format"], rng, spec, SLOPPY_KINDS)
            if corrupted:
                turn = corrupted[1]
        rows.append({"prompt": task["messages"], "completion": [{"role": "assistant", "content": turn.get("content") or ""}]})
    return rows


def build_demo_model(out_dir: str | Path, tasks: list[dict], epochs: float = 3.0, sloppy_share: float = 0.5,
                     hidden_size: int = 128, layers: int = 2, max_length: int = 1024, learning_rate: float = 2e-3,
                     seed: int = 0, quiet: bool = True) -> Path:
    """Build the tokenizer and random model, train it with SFTTrainer, save to `out_dir`."""
    import tempfile

    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    out_dir = Path(out_dir)
    rows = sft_rows(tasks, sloppy_share, seed)
    if not rows:
        raise ValueError("no task carries a reference turn to learn from")
    with tempfile.TemporaryDirectory() as scratch:
        base = build_tiny_model(Path(scratch) / "base", texts_of_pairs([{"messages": r["prompt"] + r["completion"]} for r in rows]),
                                hidden_size=hidden_size, layers=layers, heads=4, kv_heads=2,
                                intermediate_size=hidden_size * 3, seed=seed)
        tokenizer = AutoTokenizer.from_pretrained(base)
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        args = SFTConfig(output_dir=scratch, num_train_epochs=epochs, per_device_train_batch_size=8,
                         learning_rate=learning_rate, lr_scheduler_type="cosine", warmup_steps=0.05,
                         max_length=max_length, logging_steps=10, save_strategy="no", report_to=["none"], seed=seed,
                         use_cpu=True, bf16=False, activation_checkpointing=False, disable_tqdm=quiet)
        trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer)
        if quiet:
            from transformers.trainer_callback import PrinterCallback

            trainer.remove_callback(PrinterCallback)
        trainer.train()
        out_dir.mkdir(parents=True, exist_ok=True)
        trainer.model.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
    return out_dir
