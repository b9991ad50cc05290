"""Reading and writing JSON Lines: precise errors on bad input, atomic writes on output."""

from __future__ import annotations

import base64
import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel, ValidationError

from prefkit.errors import InputError


def describe_validation_error(error: ValidationError) -> str:
    """The first problem pydantic found, as `field.path: message`."""
    first = error.errors()[0]
    loc = ".".join(str(part) for part in first["loc"]) or "record"
    message = first["msg"]
    if first["type"] == "missing":
        message = "required key is missing"
    return f"{loc}: {message}"


class InvalidLines:
    """Collects lines that failed to parse when the user asked to skip them, then writes them."""

    def __init__(self, path: str | Path | None):
        self.path = Path(path) if path else None
        self.rows: list[dict] = []

    def add(self, source: str, line: int, error: str, raw: bytes) -> None:
        """Keep a bad line with where it came from and why it was rejected; nothing is lost."""
        row = {"file": source, "line": line, "error": error, "raw": raw.decode("utf-8", errors="backslashreplace")}
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            row["raw_base64"] = base64.b64encode(raw).decode("ascii")
        self.rows.append(row)

    def __len__(self) -> int:
        return len(self.rows)

    def flush(self) -> None:
        """Write the collected lines (only when there are any and a path was given)."""
        if self.path and self.rows:
            write_jsonl(self.path, self.rows)


def iter_jsonl(
    path: str | Path,
    schema: type[BaseModel] | None = None,
    invalid: InvalidLines | None = None,
    allow_empty: bool = False,
    skippable: bool = False,
) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each record; bad lines raise InputError or go to `invalid`.
    `skippable`: the caller can take an `invalid` collector, so the error is marked as one --skip-invalid
    would set aside (only a command that has that flag says so)."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found; check the path", str(path))
    if path.is_dir():
        raise InputError("is a directory, expected a JSON Lines file", str(path))
    count = 0
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            stripped = raw.strip()
            if not stripped:
                continue
            try:
                row = _parse_line(stripped, schema, first=number == 1)
            except _BadLine as bad:
                if invalid is None:
                    raise InputError(f"{bad}; fix or remove the line", str(path), number, skippable) from None
                invalid.add(str(path), number, str(bad), stripped)
                continue
            count += 1
            yield number, row
    if count == 0 and not allow_empty and not (invalid and len(invalid)):
        raise InputError("no records found (the file is empty); expected one JSON object per line", str(path))


class _BadLine(Exception):
    pass


def _parse_line(raw: bytes, schema: type[BaseModel] | None, first: bool) -> dict:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise _BadLine(f"not valid UTF-8 (byte {error.start}); re-encode the file as UTF-8") from None
    if first and text.startswith("\ufeff"):
        text = text[1:]
    try:
        row = json.loads(text)
    except json.JSONDecodeError as error:
        raise _BadLine(f"malformed JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(row, dict):
        raise _BadLine(f"expected a JSON object, found {type(row).__name__}")
    if schema is not None:
        try:
            schema.model_validate(row)
        except ValidationError as error:
            raise _BadLine(describe_validation_error(error)) from None
    return row


def read_json(path: str | Path, what: str, fix: str) -> dict:
    """A JSON object from a file prefkit (or a library) wrote, e.g. a run's state.json; a missing, unreadable
    or damaged one is an InputError naming `what` it should be and how to `fix` it."""
    path = Path(path)
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise InputError(f"not found (expected {what}); {fix}", str(path)) from None
    except (ValueError, UnicodeDecodeError) as error:
        raise InputError(f"not readable as {what} ({error}); {fix}", str(path)) from None
    if not isinstance(data, dict):
        raise InputError(f"not {what} (a JSON {type(data).__name__}, not an object); {fix}", str(path))
    return data


def read_jsonl(path: str | Path, schema: type[BaseModel] | None = None, **kwargs: Any) -> list[dict]:
    """All records of a JSON Lines file (see `iter_jsonl`)."""
    return [row for _, row in iter_jsonl(path, schema, **kwargs)]


_LINE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # made once, as json.dumps would per call


def dumps(row: Any) -> str:
    """One JSON Lines line (UTF-8 kept as is, no trailing newline)."""
    return _LINE.encode(row)


def current_umask() -> int:
    """The process's umask, read without changing it (Linux reports it in /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_writer(path: str | Path) -> Iterator[TextIO]:
    """Open a temp file beside `path`; on success fsync and rename it over `path`, else remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600; an output gets the user's usual mode
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(error, OSError) and error.filename in (None, tmp):
            error.filename = str(path)  # the file the user named, not our temp file
        raise


def write_jsonl(path: str | Path, rows: Iterable[Any]) -> int:
    """Write rows atomically (see `atomic_writer`); returns how many were written."""
    count = 0
    with atomic_writer(path) as handle:
        for row in rows:
            handle.write(dumps(row))
            handle.write("\n")
            count += 1
    return count


def finite(obj: Any) -> Any:
    """`obj` with NaN and infinities as None: JSON has no such numbers (json.dump would write `NaN`, which no
    strict parser reads)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {key: finite(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(value) for value in obj]
    return obj


def write_json(path: str | Path, obj: Any) -> None:
    """Write one JSON document atomically (indented, for people to read; NaN written as null)."""
    with atomic_writer(path) as handle:
        json.dump(finite(obj), handle, ensure_ascii=False, indent=2, allow_nan=False, default=str)
        handle.write("\n")
