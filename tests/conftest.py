"""Shared fixtures: the real trajectories in ../shared/corpus as tasks, and pairs built from them."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from prefkit.review.serve import server_env_dir
from prefkit.strategies.corrupt import corrupt_pair
from prefkit.tasks import load_tasks

ROOT = Path(__file__).resolve().parents[1]
CORPUS = Path(os.environ.get("PREFKIT_CORPUS", ROOT.parent / "shared" / "corpus"))
if not CORPUS.exists():
    CORPUS = ROOT / "data" / "corpus"

CORPUS_FILES = [
    ("react/fever.json", "react"),
    ("react/alfworld.json", "alfworld-react"),
    ("react/alfworld_3prompts.json", "alfworld-react"),
    ("agentbench/alfworld_multiturn_new.json", "agentbench"),
    ("agentbench/dbbench_dev.jsonl", "agentbench"),
]


# The Argilla server's virtual environment is a build cache for the machine, not anybody's data: every test
# keeps using the one already built (it takes a minute to build) whatever HOME it gets.
ARGILLA_VENV = os.environ.get("PREFKIT_ARGILLA_VENV") or str(server_env_dir())


@pytest.fixture(autouse=True)
def private_home(tmp_path_factory, monkeypatch):
    """Every test gets its own HOME and XDG folders and no credentials from the developer's environment, so a
    developer's own Argilla server or API key can never reach a test (simonw/llm's `env_setup`)."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("PREFKIT_ARGILLA_VENV", ARGILLA_VENV)
    monkeypatch.delenv("PREFKIT_ARGILLA_DIR", raising=False)
    monkeypatch.setenv("HOME", str(home))
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(name, str(home / name.lower()))
    for name in list(os.environ):
        if name.startswith("ARGILLA_") or name == "OPENAI_API_KEY":
            monkeypatch.delenv(name)
    # No test reaches a hub: a call that tried would wait on the network instead of failing.
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(name, "1")
    return home


@pytest.fixture(scope="session")
def corpus_tasks() -> list[dict]:
    """Every task the corpus yields, each with its real next turn in meta.reference."""
    tasks = []
    for name, source in CORPUS_FILES:
        tasks.extend(load_tasks(CORPUS / name, source))
    assert tasks, f"no corpus at {CORPUS}"
    return tasks


def tasks_of(tasks: list[dict], format_name: str) -> list[dict]:
    """The tasks of one format."""
    return [task for task in tasks if task["format"] == format_name]


@pytest.fixture(scope="session")
def corpus_pairs(corpus_tasks) -> list[dict]:
    """(real chosen, corrupted rejected) pairs, one per corpus turn, seeded."""
    rng = random.Random(1234)
    pairs = [corrupt_pair(task, rng) for task in corpus_tasks]
    return [pair for pair in pairs if pair is not None]


def swapped(pair: dict) -> dict:
    """The same pair with chosen and rejected exchanged (and a fresh id)."""
    return {
        "prompt": pair["prompt"],
        "chosen": pair["rejected"],
        "rejected": pair["chosen"],
        "meta": dict(pair["meta"]),
    }
