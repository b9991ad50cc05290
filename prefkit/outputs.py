"""Where a command's files go, and the one place that checks them before any work: no output lands on an
input, on another output of the same command, in a folder holding files prefkit did not write (unless told
to), outside the folder a user-supplied name must stay in, or somewhere it cannot be written. Permission,
full-disk and is-a-folder errors that still happen later become one line here too (`describe_os_error`)."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from prefkit.errors import InputError, PrefkitError

# Written into every folder a command creates: the folder is prefkit's, so a later run may write into it again.
MARKER = ".prefkit-output"
# A disk that fills (or a file-size limit) mid-run: exit 1, what was complete is kept.
FULL_DISK = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def side_file(path: str | Path, kind: str, suffix: str = ".jsonl") -> Path:
    """The file beside `path` that holds its `kind` of side records: `curated.jsonl` -> `curated.dropped.jsonl`,
    `candidates.jsonl` -> `candidates.skipped.jsonl` (`suffix` "" for files that are not JSON Lines)."""
    path = Path(path)
    stem = path.name.removesuffix(".jsonl")
    return path.with_name(f"{stem}.{kind}{suffix}")


def _same(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))


def inside(inner: Path, outer: Path) -> bool:
    """Whether `inner` is `outer` or lies somewhere under it."""
    inner, outer = inner.resolve(), outer.resolve()
    return inner == outer or outer in inner.parents


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


def _writable_place(flag: str, path: Path, place: Path) -> None:
    """The nearest existing folder from `place` up (on the way to `path`) is a folder we may write in."""
    while not place.exists() and place != place.parent:
        place = place.parent
    if not place.is_dir():
        raise InputError(f"{flag} {path}: {place} is a file, not a folder; choose another path")
    if not os.access(place, os.W_OK | os.X_OK):
        raise InputError(f"{flag} {path}: cannot write in {place} (read-only or not yours); choose another path")


def check_output_file(flag: str, path: str | Path) -> None:
    """`path` can be written as a file: not a folder, in a folder (existing or to be made) we may write in."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{flag} {path} is a folder; give a file path")
    _writable_place(flag, path, path.parent)
    if path.exists() and not path.is_file():  # a device or a pipe: renaming over it would replace it
        raise InputError(f"{flag} {path} is not a regular file; give a file path")
    if path.exists() and not os.access(path, os.W_OK):
        raise InputError(f"{flag} {path} is read-only; choose another path")


def check_output_folder(flag: str, path: str | Path, overwrite: bool = False) -> None:
    """`path` can be a command's output folder: not a file, writable, and new, empty or made by prefkit
    (or `overwrite`, the user's --overwrite)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{flag} {path} is a file; give a folder")
    _writable_place(flag, path, path)
    if path.is_dir() and not overwrite and not (path / MARKER).exists() and any(path.iterdir()):
        raise InputError(
            f"{flag} {path} already holds files prefkit did not write; choose a new or empty folder, or pass "
            "--overwrite to write into it"
        )


def check_outputs(
    inputs: Iterable[str | Path | None],
    files: dict[str, str | Path | None] | None = None,
    folders: dict[str, str | Path | None] | None = None,
    overwrite: bool = False,
) -> None:
    """Everything about a command's outputs that can be checked before any work (see the module docstring):
    `files` and `folders` map each output's flag to its path; `inputs` are files or folders it reads."""
    files = {flag: Path(p) for flag, p in (files or {}).items() if p is not None}
    folders = {flag: Path(p) for flag, p in (folders or {}).items() if p is not None}
    given = [Path(p) for p in inputs if p is not None]
    check_distinct(given, {**files, **folders})
    for flag, folder in folders.items():
        for source in given:
            if inside(source, folder) or inside(folder, source):
                raise InputError(f"{flag} {folder} holds or lies in {source}, an input of this command; choose another")
        for other_flag, other in {**files, **folders}.items():
            if other_flag != flag and (inside(other, folder) or inside(folder, other)):
                raise InputError(f"{flag} {folder} and {other_flag} {other} overlap; give them separate places")
    for flag, path in files.items():
        check_output_file(flag, path)
    for flag, path in folders.items():
        check_output_folder(flag, path, overwrite)


@contextmanager
def output_folder(path: str | Path, keep_on_error: bool = False) -> Iterator[Path]:
    """`with output_folder(out) as out:` makes the (checked) folder and marks it as prefkit's; a full disk
    while working in it is the OSError it is (`disk_errors`); a folder this call created is removed again when
    the work fails, unless `keep_on_error` (checkpoints worth resuming)."""
    path = Path(path)
    created = not path.exists()
    try:
        with disk_errors(path):
            path.mkdir(parents=True, exist_ok=True)
            marker = path / MARKER
            if not marker.exists():
                marker.write_text("written by prefkit; a later prefkit run may write into this folder again\n")
            yield path
    except BaseException:
        if created and not keep_on_error:
            shutil.rmtree(path, ignore_errors=True)
        raise


@contextmanager
def disk_errors(path: str | Path) -> Iterator[None]:
    """Libraries that write model files (safetensors, torch) report a full disk as their own exception types:
    inside this block such an error becomes the OSError it stands for, naming `path`."""
    try:
        yield
    except OSError as error:
        error.filename = error.filename or str(path)
        raise
    except PrefkitError:
        raise  # the user's own mistake, whatever the free space
    except Exception as error:
        text = str(error)
        for number in FULL_DISK:
            if f"os error {number})" in text or os.strerror(number) in text:
                raise OSError(number, os.strerror(number), str(path)) from error
        if _free_bytes(Path(path)) < 1 << 20:  # torch.save, for one, does not say why a write failed
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from error
        raise


def _free_bytes(path: Path) -> int:
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return 1 << 62


def name_inside(folder: str | Path, name: str, suffix: str = "") -> Path:
    """`folder/NAME+suffix` for a user-supplied name, refused when it would lie anywhere but directly in `folder`."""
    folder = Path(folder)
    if not name or "\0" in name or "/" in name or name in (".", "..") or name != name.strip():
        raise InputError(f"{name!r} cannot be a file name in {folder}; use letters, digits, '-' and '_'")
    path = folder / f"{name}{suffix}"
    if path.resolve().parent != folder.resolve():
        raise InputError(f"{name!r} would be written outside {folder}; use letters, digits, '-' and '_'")
    return path


def describe_os_error(error: OSError) -> str:
    """An operating-system error on a file as one line: the path, what happened, what to do."""
    where = f"{error.filename}: " if error.filename else ""
    reason = (error.strerror or str(error)).lower()
    hints = {
        errno.ENOSPC: "the disk is full; free some space and run again (finished files are kept)",
        errno.EDQUOT: "the disk quota is used up; free some space and run again (finished files are kept)",
        errno.EFBIG: "the file grew past the size limit; raise the limit or free space and run again",
        errno.EROFS: "read-only file system; choose an output path elsewhere",
        errno.EACCES: "permission denied; choose a path you may write or fix its permissions",
        errno.EPERM: "not permitted; choose a path you may write or fix its permissions",
        errno.EISDIR: "is a folder; give a file path",
        errno.ENOTDIR: "a file stands where a folder is needed; choose another path",
        errno.EEXIST: "a file is in the way; choose another path",
        errno.ENAMETOOLONG: "the name is too long; choose a shorter path",
    }
    return f"{where}{hints.get(error.errno, reason)}"


def os_error_exit_code(error: OSError) -> int:
    """1 for a disk that filled while working (the run can go on once there is room), else 2 (a bad path)."""
    return 1 if error.errno in FULL_DISK else 2
