"""Where a command's files go: one naming rule for side files, and the check that no output lands on an
input or on another output of the same command."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from prefkit.errors import InputError


def side_file(path: str | Path, kind: str, suffix: str = ".jsonl") -> Path:
    """The file beside `path` that holds its `kind` of side records: `curated.jsonl` -> `curated.dropped.jsonl`,
    `candidates.jsonl` -> `candidates.skipped.jsonl` (`suffix` "" for files that are not JSON Lines)."""
    path = Path(path)
    stem = path.name.removesuffix(".jsonl")
    return path.with_name(f"{stem}.{kind}{suffix}")


def _same(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))


def check_distinct(inputs: Iterable[str | Path | None], outputs: dict[str, str | Path | None]) -> None:
    """Refuse an output that is one of the inputs, or the same file as another output (named by its flag)."""
    given = [Path(p) for p in inputs if p is not None]
    named = [(flag, Path(p)) for flag, p in outputs.items() if p is not None]
    for number, (flag, path) in enumerate(named):
        for source in given:
            if _same(path, source):
                raise InputError(f"{flag} {path} is also an input of this command; choose another output")
        for other_flag, other in named[:number]:
            if _same(path, other):
                raise InputError(f"{flag} and {other_flag} are the same file; give them different paths", str(path))
