"""Helpers for tests that run `prefkit generate` against the stand-in teacher."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

PREFKIT = [sys.executable, "-m", "prefkit"]


def write_recipe(path: Path, url: str, **teacher) -> Path:
    """A recipe with a contrastive teacher at `url`, fast retries and short timeouts."""
    settings = {
        "base_url": url,
        "model": "teacher-model",
        "timeout": 1.0,
        "backoff_initial": 0.02,
        "backoff_max": 0.2,
        "max_attempts": 10,
        "concurrency": 8,
        **teacher,
    }
    path.write_text(yaml.safe_dump({"generate": {"strategy": "contrastive", "teacher": settings}}))
    return path


def run(*args: str, key: str = "sk-test", timeout: float = 120, **popen) -> subprocess.CompletedProcess:
    """Run `prefkit ARGS` in a subprocess with OPENAI_API_KEY set."""
    env = dict(os.environ, OPENAI_API_KEY=key)
    return subprocess.run([*PREFKIT, *args], capture_output=True, text=True, env=env, timeout=timeout, **popen)


def lines(path: Path) -> list[dict]:
    """Rows of a JSONL file (empty list when it does not exist)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
