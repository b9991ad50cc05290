"""Fixtures for training tests: a tiny Qwen3 built in-process and a small pairs file."""

import json
from pathlib import Path

import pytest

pytest.importorskip("trl")

ROOT = Path(__file__).resolve().parents[2]
PAIRS = ROOT / "data" / "pairs" / "tiny-pairs.jsonl"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A 2-layer random Qwen3 with a BPE tokenizer trained on the shipped pairs (a few seconds)."""
    from prefkit.jsonl import read_jsonl
    from prefkit.train.tiny import build_tiny_model, texts_of_pairs

    out = tmp_path_factory.mktemp("tiny-model")
    return build_tiny_model(
        out,
        texts_of_pairs(read_jsonl(PAIRS)),
        hidden_size=32,
        heads=2,
        kv_heads=1,
        intermediate_size=64,
        vocab_size=1024,
    )


@pytest.fixture(scope="session")
def small_pairs(tmp_path_factory) -> Path:
    """48 short corpus pairs (DBBench and FEVER first turns, ALFWorld early turns)."""
    rows = [json.loads(line) for line in PAIRS.read_text().splitlines()]
    rows = sorted(rows, key=lambda r: sum(len(m.get("content") or "") for m in r["prompt"]))[:48]
    path = tmp_path_factory.mktemp("pairs") / "pairs.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def write_config(path: Path, model: Path, pairs: Path, out: Path, **overrides) -> Path:
    """A small DPO config for tests."""
    import yaml

    config = {
        "model": str(model),
        "dataset": str(pairs),
        "output_dir": str(out),
        "max_length": 384,
        "learning_rate": 5e-3,
        "lr_scheduler_type": "constant",
        "max_steps": 4,
        "per_device_train_batch_size": 8,
        "per_device_eval_batch_size": 16,
        "eval_split": 0.2,
        "save_steps": 2,
        "logging_steps": 1,
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0},
        "seed": 0,
        **overrides,
    }
    path.write_text(yaml.safe_dump(config))
    return path
