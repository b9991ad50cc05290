"""Seconds per optimizer step and peak memory of `prefkit dpo` against a plain hand-written TRL DPOTrainer
script on the same model, data and settings, run alternately, each run in a fresh process.

    python benchmarks/dpo_overhead.py [--rounds 2] [--steps 8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAIRS = ROOT / "data" / "pairs" / "tiny-pairs.jsonl"
SETTINGS = dict(
    beta=0.1,
    max_length=768,
    learning_rate=1e-3,
    lr_scheduler_type="constant",
    per_device_train_batch_size=4,
    gradient_accumulation_steps=1,
    seed=0,
)
LORA = dict(r=8, alpha=16, dropout=0.0)


def build_model(folder: Path) -> Path:
    """A Qwen3 big enough that one CPU step takes over a second (4 layers, hidden 256)."""
    from prefkit.jsonl import read_jsonl
    from prefkit.train.tiny import build_tiny_model, texts_of_pairs

    return build_tiny_model(
        folder / "model",
        texts_of_pairs(read_jsonl(PAIRS)),
        hidden_size=256,
        layers=4,
        heads=8,
        kv_heads=4,
        intermediate_size=768,
        vocab_size=2048,
    )


def worker_prefkit(model: str, out: str, steps: int) -> dict:
    from prefkit.train.config import load_dpo_config
    from prefkit.train.dpo import train

    overrides = [
        f"model={model}",
        f"dataset={PAIRS}",
        f"output_dir={out}",
        f"max_steps={steps}",
        "eval_split=0",
        "save_steps=100000",
        "logging_steps=1",
        *[f"{k}={v}" for k, v in SETTINGS.items()],
        *[f"lora.{k}={v}" for k, v in LORA.items()],
        "report_to=[none]",
    ]
    summary = train(load_dpo_config(None, overrides), "benchmark", quiet=True)
    runtime = next(e["train_runtime"] for e in summary["log_history"] if "train_runtime" in e)
    return {"sec_per_step": runtime / summary["steps"]}


def worker_plain(model: str, out: str, steps: int) -> dict:
    """What a user would write by hand with TRL: load, LoRA config, DPOTrainer, train, save."""
    import json as _json

    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    rows = [_json.loads(line) for line in PAIRS.read_text().splitlines()]

    def keep(ms):
        return [{"role": m["role"], "content": m.get("content") or ""} for m in ms]

    dataset = Dataset.from_list(
        [{"prompt": keep(r["prompt"]), "chosen": keep(r["chosen"]), "rejected": keep(r["rejected"])} for r in rows]
    )
    tokenizer = AutoTokenizer.from_pretrained(model)
    args = DPOConfig(
        output_dir=out,
        max_steps=steps,
        save_steps=100000,
        logging_steps=1,
        report_to=["none"],
        use_cpu=True,
        bf16=False,
        activation_checkpointing=False,
        disable_tqdm=True,
        **SETTINGS,
    )
    trainer = DPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32),
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=LoraConfig(
            r=LORA["r"],
            lora_alpha=LORA["alpha"],
            lora_dropout=LORA["dropout"],
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
            task_type="CAUSAL_LM",
        ),
    )
    result = trainer.train()
    trainer.save_model(out)
    return {"sec_per_step": result.metrics["train_runtime"] / trainer.state.global_step}


def run_worker(kind: str, model: Path, steps: int) -> dict:
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run(
            [sys.executable, __file__, "--worker", kind, "--model", str(model), "--out", out, "--steps", str(steps)],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--worker", choices=["prefkit", "plain"])
    parser.add_argument("--model")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.worker:
        import transformers

        transformers.logging.set_verbosity_error()
        result = (worker_prefkit if args.worker == "prefkit" else worker_plain)(args.model, args.out, args.steps)
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return
    with tempfile.TemporaryDirectory() as folder:
        model = build_model(Path(folder))
        results: dict[str, list[dict]] = {"plain": [], "prefkit": []}
        for _ in range(args.rounds):
            for kind in ("plain", "prefkit"):
                started = time.perf_counter()
                results[kind].append(run_worker(kind, model, args.steps))
                print(
                    f"  {kind:8s} {results[kind][-1]['sec_per_step']:.3f} s/step, "
                    f"peak {results[kind][-1]['peak_rss_mb']:.0f} MB ({time.perf_counter() - started:.0f}s)"
                )
    mean = {kind: sum(r["sec_per_step"] for r in runs) / len(runs) for kind, runs in results.items()}
    peak = {kind: max(r["peak_rss_mb"] for r in runs) for kind, runs in results.items()}
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{args.rounds} rounds x {args.steps} steps, model 4 layers hidden 256, batch 4, max_length 768"
    )
    print(f"plain TRL script: {mean['plain']:.3f} s/step, peak {peak['plain']:.0f} MB")
    print(f"prefkit dpo:      {mean['prefkit']:.3f} s/step, peak {peak['prefkit']:.0f} MB")
    print(
        f"overhead: {mean['prefkit'] / mean['plain'] - 1:+.1%} step time, "
        f"{peak['prefkit'] - peak['plain']:+.0f} MB peak"
    )


if __name__ == "__main__":
    main()
