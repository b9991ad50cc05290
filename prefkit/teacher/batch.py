"""The teacher through the OpenAI Batch API: half the price, answers within a completion window.

How a batch run goes (`prefkit generate` with `teacher.mode: batch`):
1. The strategies run against a `BatchTeacher`: an answer in the cache is used, a missing one is written down
   as a batch request (`custom_id` = the cache key of its first answer) and its task waits (`Deferred`).
2. The requests are written as Batch API input files (`{"custom_id", "method", "url", "body"}` a line, at most
   `max_requests` a file), uploaded through the Files API and submitted to `/v1/batches`.
3. Each batch is polled until it ends; its output and error files are downloaded and every answer goes into
   the same response cache an online run uses. Then the strategies run again: tasks whose answers are all
   there finish, and follow-up requests (a judge's comparisons) make the next round.

Every step is recorded in OUT.batches/state.jsonl (fsync'd) the moment it happens: input files with their
requests, uploads, and each batch id as soon as the server gives it. A killed run resumes by those ids and
never submits a batch twice; a batch created but killed before its id was written is found again by its
input file id. Failed and expired lines are asked again in a new batch or online (`retry`), at most
`max_attempts` batches each, after which their task is listed as failed.

The same input files work offline with vLLM's `run-batch` (`--batch-file-only`, then `--batch-results`),
whose output lines (`{"id", "custom_id", "response": {"status_code", "body"}, "error"}`) follow
vllm-project/vllm `vllm/entrypoints/openai/run_batch.py` (BatchRequestOutput) @0056ae7, as OpenAI's do.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefkit.appendlog import AppendLog
from prefkit.errors import FatalTeacherError, InputError, TeacherError
from prefkit.privacy import redact_text
from prefkit.stage import no_progress
from prefkit.teacher.answers import Answer, parse_answers
from prefkit.teacher.client import Teacher

if TYPE_CHECKING:
    from prefkit.teacher.cache import ResponseCache

log = logging.getLogger(__name__)

ENDPOINT = "/v1/chat/completions"
TERMINAL = {"completed", "failed", "expired", "cancelled"}


class Deferred(Exception):
    """A task's answer is wanted from a batch; the task waits for the next round."""


@dataclass
class BatchRequest:
    """One line of an input file: the answers' cache keys and the request body."""

    custom_id: str
    keys: list[str]
    body: dict

    def line(self) -> dict:
        """The Batch API input line."""
        return {"custom_id": self.custom_id, "method": "POST", "url": ENDPOINT, "body": self.body}


class BatchTeacher:
    """What the strategies talk to in a batch round: answers from the cache, the rest written down as batch
    requests (`wanted`); a line that failed before is asked online (`retry: online`) or once more in a batch,
    until `max_attempts`."""

    def __init__(self, teacher: Teacher, runner: BatchRunner, online: bool = True):
        self.teacher, self.runner = teacher, runner
        self.online = online  # False with --batch-file-only: nothing is ever sent
        self.config = teacher.config
        self.wanted: dict[str, BatchRequest] = {}
        self.hit_keys: set[str] = set()

    async def complete(
        self,
        messages: list[dict],
        n: int = 1,
        tools: list[dict] | None = None,
        sampling: dict[str, Any] | None = None,
        sample: int = 0,
    ) -> list[Answer]:
        """The answers when all are cached; raises Deferred after writing down the missing ones."""

        settings, keys = self.teacher.keys(messages, n, tools, sampling, sample)
        found = [self.runner.cache.get(key, count=False) for key in keys]
        missing = [index for index, hit in enumerate(found) if hit is None]
        if not missing:
            answers = []
            for key, hit in zip(keys, found):
                usage = self.runner.fresh.get(key)
                if usage is None:
                    self.hit_keys.add(key)
                answers.append(
                    Answer(
                        message=hit["message"],
                        prompt_tokens=(usage or {}).get("prompt_tokens", 0),
                        completion_tokens=(usage or {}).get("completion_tokens", 0),
                        cached=usage is None,
                    )
                )
            return answers
        groups = [missing] if (self.config.supports_n and len(missing) > 1) else [[i] for i in missing]
        batch = self.config.batch
        for group in groups:
            custom_id = keys[group[0]]
            tried = self.runner.attempts.get(custom_id, 0)
            if tried >= batch.max_attempts:
                raise TeacherError(
                    f"batch request {custom_id} failed in {tried} batches: {self.runner.errors.get(custom_id)}"
                )
            if tried and batch.retry == "online" and self.online:
                return await self.teacher.complete(messages, n, tools, sampling, sample)
        for group in groups:
            body = self.config.request_body(messages, len(group), tools, settings)
            request = BatchRequest(keys[group[0]], [keys[i] for i in group], body)
            self.wanted[request.custom_id] = request
        raise Deferred()


@dataclass
class BatchRecord:
    """A submitted batch as the state log knows it."""

    id: str
    input: str
    status: str = "submitted"
    requests: int = 0
    failed: int = 0


@dataclass
class BatchRunner:
    """Writes input files, submits and follows batches, and reads results into the cache; all of it recorded
    in `folder`/state.jsonl so a killed run picks up where it was."""

    teacher: Teacher
    cache: ResponseCache
    folder: Path
    say: Callable[[str], None] = lambda text: None
    progress: Callable[[str, int], AbstractContextManager[Callable[[int], None]]] | None = None
    poll: Callable[[float], Any] = asyncio.sleep
    manifest: dict[str, list[str]] = field(default_factory=dict)
    inputs: dict[str, list[str]] = field(default_factory=dict)  # input file name -> its custom ids
    uploads: dict[str, str] = field(default_factory=dict)  # input file name -> file id
    uploaded_at: dict[str, float] = field(default_factory=dict)  # input file name -> when (time.time())
    batches: dict[str, BatchRecord] = field(default_factory=dict)
    answered: set[str] = field(default_factory=set)  # input files whose results were read
    attempts: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    fresh: dict[str, dict] = field(default_factory=dict)  # keys answered by this run's batches -> usage

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.state = AppendLog(self.folder / "state.jsonl", fsync=True)
        for row in self.state.rows:
            self._replay(row, live=False)

    def _replay(self, row: dict, live: bool = True) -> None:
        """Take in one state record; `live`: written by this run (only this run's failures count towards
        `max_attempts`, so a new run retries the tasks an earlier one gave up on, as online runs do)."""
        kind = row.get("kind")
        if kind == "input":
            self.inputs[row["file"]] = list(row["requests"])
            self.manifest.update(row["requests"])
        elif kind == "uploaded":
            self.uploads[row["file"]] = row["file_id"]
            self.uploaded_at[row["file"]] = row.get("at", 0.0)
        elif kind == "submitted":
            self.batches[row["batch_id"]] = BatchRecord(row["batch_id"], row["file"], requests=row.get("requests", 0))
        elif kind == "abandoned":
            self.uploads.pop(row["file"], None)
            self.answered.add(row["file"])
        elif kind == "finished":
            for name in row.get("files", []):
                self.answered.add(name)
            if row.get("batch_id") in self.batches:
                record = self.batches[row["batch_id"]]
                record.status, record.failed = row["status"], len(row.get("failed", {}))
            for custom_id, error in row.get("failed", {}).items() if live else ():
                self.attempts[custom_id] = self.attempts.get(custom_id, 0) + 1
                self.errors[custom_id] = error

    def _record(self, row: dict) -> None:
        self.state.append(row)
        self._replay(row)

    def close(self) -> None:
        """Close the state log."""
        self.state.close()

    # -- input files -------------------------------------------------------------------------------------

    def pending(self) -> list[BatchRecord]:
        """Batches submitted whose results have not been read."""
        return [record for record in self.batches.values() if record.input not in self.answered]

    def unanswered_inputs(self) -> list[str]:
        """Input files written whose results have not been read."""
        return [name for name in self.inputs if name not in self.answered]

    def write_inputs(self, requests: dict[str, BatchRequest]) -> list[Path]:
        """The requests as input files of at most `max_requests` lines and `max_bytes` bytes (each written whole,
        then recorded)."""
        from prefkit.jsonl import atomic_writer, dumps

        limits = self.teacher.config.batch
        chunks: list[list[tuple[BatchRequest, str]]] = [[]]
        size = 0
        for request in requests.values():
            line = dumps(request.line()) + "\n"
            weight = len(line.encode("utf-8"))
            if weight > limits.max_bytes:
                raise InputError(
                    f"one request is {weight:,} bytes, more than teacher.batch.max_bytes ({limits.max_bytes:,})"
                )
            if chunks[-1] and (len(chunks[-1]) >= limits.max_requests or size + weight > limits.max_bytes):
                chunks.append([])
                size = 0
            chunks[-1].append((request, line))
            size += weight
        paths = []
        for chunk in chunks if chunks[0] else []:
            name = f"input-{len(self.inputs) + 1:04d}.jsonl"
            path = self.folder / name
            with atomic_writer(path) as handle:
                handle.write("".join(line for _, line in chunk))
            self._record({"kind": "input", "file": name, "requests": {r.custom_id: r.keys for r, _ in chunk}})
            paths.append(path)
        return paths

    def covered(self, requests: Iterable[str]) -> list[str] | None:
        """The unanswered input files that already hold every one of `requests`, or None."""
        wanted = set(requests)
        names = [name for name in self.unanswered_inputs() if wanted & set(self.inputs[name])]
        held = set().union(*(self.inputs[name] for name in names)) if names else set()
        return names if wanted <= held else None

    # -- the Batch API -----------------------------------------------------------------------------------

    async def resume(self) -> None:
        """Follow every batch recorded but not finished; find batches that were created but whose id a kill
        kept from the log (by their input file id), and set aside uploads that never became a batch."""
        orphans = {
            name: file_id
            for name, file_id in self.uploads.items()
            if name not in self.answered and not any(b.input == name for b in self.batches.values())
        }
        if orphans:
            since = min(self.uploaded_at.get(name, 0.0) for name in orphans)
            found = await self._find_batches(set(orphans.values()), since)
            for name, file_id in orphans.items():
                if file_id in found:
                    batch = found[file_id]
                    self._record(
                        {"kind": "submitted", "file": name, "batch_id": batch.id, "requests": len(self.inputs[name])}
                    )
                else:
                    self._record({"kind": "abandoned", "file": name, "why": "uploaded, never submitted"})
        pending = self.pending()
        if pending:
            names = ", ".join(record.id for record in pending)
            self.say(f"resuming {len(pending)} batch(es) recorded in {self.state.path}: {names}")
            await self._follow(pending)

    async def submit(self, requests: dict[str, BatchRequest]) -> None:
        """Write, upload, submit and follow batches for `requests`, reading their answers into the cache."""
        paths = self.write_inputs(requests)
        records = []
        async with self._client() as client:
            for path in paths:
                file_id = await self._call(
                    client.files.create(file=(path.name, path.read_bytes(), "application/jsonl"), purpose="batch"),
                    "upload a batch input file",
                )
                self._record({"kind": "uploaded", "file": path.name, "file_id": file_id.id, "at": time.time()})
                batch = await self._call(
                    client.batches.create(
                        input_file_id=file_id.id,
                        endpoint=ENDPOINT,
                        completion_window=self.teacher.config.batch.completion_window,
                        metadata={"prefkit_input": path.name},
                    ),
                    "create a batch",
                )
                count = len(self.inputs[path.name])
                self._record({"kind": "submitted", "file": path.name, "batch_id": batch.id, "requests": count})
                records.append(self.batches[batch.id])
        self.say(f"submitted {len(records)} batch(es) of {len(requests)} requests: " + ", ".join(r.id for r in records))
        await self._follow(records)

    async def _find_batches(self, file_ids: set[str], since: float) -> dict[str, Any]:
        """The batches made from `file_ids` (uploaded at `since` or later), by input file id. The listing is
        newest first, so it stops at the first batch older than the uploads (an account may hold thousands)."""
        found = {}
        async with self._client() as client:
            pages = client.batches.list(limit=100)
            try:
                async for batch in pages:
                    if batch.input_file_id in file_ids:
                        found[batch.input_file_id] = batch
                    if len(found) == len(file_ids) or batch.created_at < since - 300:  # 5 min for clock skew
                        break
            except Exception as error:  # the SDK's API errors; a listing that fails leaves the uploads alone
                raise self._fatal("list batches", error) from None
        return found

    async def _follow(self, records: list[BatchRecord]) -> None:
        total = sum(record.requests for record in records)
        progress = self.progress or no_progress
        with progress(f"batches ({len(records)})", total) as advance:
            done = {record.id: 0 for record in records}

            def moved(batch_id: str, count: int) -> None:
                advance(count - done[batch_id])
                done[batch_id] = count

            async with self._client() as client:
                await asyncio.gather(*(self._follow_one(client, record, moved) for record in records))

    async def _follow_one(self, client, record: BatchRecord, moved: Callable[[str, int], None]) -> None:
        while True:
            batch = await self._call(client.batches.retrieve(record.id), f"look at batch {record.id}")
            counts = batch.request_counts
            if counts is not None:
                moved(record.id, (counts.completed or 0) + (counts.failed or 0))
            if batch.status in TERMINAL:
                break
            await self.poll(self.teacher.config.batch.poll_seconds)
        lines: list[tuple[str, bytes]] = []
        for kind, file_id in (("output", batch.output_file_id), ("errors", batch.error_file_id)):
            if file_id:
                content = await self._call(client.files.content(file_id), f"download {kind} of batch {record.id}")
                path = self.folder / f"{kind}-{record.id}.jsonl"
                path.write_bytes(content.content)
                lines.append((str(path), content.content))
        why = {"failed": "the batch failed", "expired": "the batch expired", "cancelled": "the batch was cancelled"}
        problems = "; ".join(e.message or "" for e in (batch.errors.data or [])) if batch.errors else ""
        self.read_results(
            lines,
            [record.input],
            batch.status,
            record.id,
            why.get(batch.status, "no answer") + (f" ({redact_text(problems)})" if problems else ""),
        )

    def read_results(
        self,
        files: list[tuple[str, bytes]],
        inputs: list[str] | None = None,
        status: str = "completed",
        batch_id: str | None = None,
        missing_reason: str = "not in the results",
    ) -> tuple[int, int]:
        """Read output/error lines into the cache: (answered, failed). `inputs`: the input files these results
        answer (None: whichever inputs their custom ids come from); a request of those inputs with no line is
        failed with `missing_reason`."""
        answered, failed = set(), {}
        for source, data in files:
            for number, raw in enumerate(data.splitlines(), start=1):
                if not raw.strip():
                    continue
                try:
                    line = json.loads(raw)
                    custom_id = line["custom_id"]
                except (ValueError, KeyError, TypeError):
                    raise InputError("is not a batch output line (JSON with a custom_id)", source, number) from None
                keys = self.manifest.get(custom_id)
                if keys is None:
                    raise InputError(
                        f"custom_id {custom_id!r} is not a request prefkit wrote for this output (its input files "
                        f"are listed in {self.state.path}); give the results of those files",
                        source,
                        number,
                    )
                error = _line_error(line)
                if error is None:
                    try:
                        body = line["response"]["body"]
                        answers = parse_answers(body, len(keys))
                    except (ValueError, TypeError, KeyError, AttributeError) as problem:
                        error = f"malformed answer ({problem})"
                if error is not None:
                    if custom_id not in answered:
                        failed[custom_id] = redact_text(error)
                    continue
                failed.pop(custom_id, None)
                answered.add(custom_id)
                for key, answer in zip(keys, answers):  # the usage split as parse_answers splits it
                    mine = {"prompt_tokens": answer.prompt_tokens, "completion_tokens": answer.completion_tokens}
                    if self.cache.put(key, {"message": answer.message, "batch": batch_id or source}):
                        self.fresh[key] = mine
                        self.teacher.usage.batch_prompt_tokens += mine["prompt_tokens"]
                        self.teacher.usage.batch_completion_tokens += mine["completion_tokens"]
        seen = answered | set(failed)
        if inputs is None:
            inputs = [name for name in self.unanswered_inputs() if seen & set(self.inputs[name])]
        for name in inputs:
            for custom_id in self.inputs.get(name, []):
                if custom_id not in seen:
                    failed[custom_id] = missing_reason
        self._record(
            {
                "kind": "finished",
                "batch_id": batch_id,
                "status": status,
                "files": inputs,
                "answered": len(answered),
                "failed": failed,
            }
        )
        return len(answered), len(failed)

    def read_results_file(self, path: Path) -> tuple[int, int]:
        """`--batch-results FILE`: a results file of input files this output wrote (from vLLM's run-batch or
        downloaded by hand)."""
        try:
            data = Path(path).read_bytes()
        except OSError as error:
            raise InputError(f"cannot read the batch results ({os.strerror(error.errno or 0)})", str(path)) from None
        return self.read_results([(str(path), data)], None, "completed", None, "not in the results file")

    # -- the SDK -----------------------------------------------------------------------------------------

    def _client(self):
        return self.teacher.sdk()  # an AsyncOpenAI: `async with` closes it

    async def _call(self, call, what: str):
        try:
            return await call
        except Exception as error:  # the SDK's API errors: one line that says the run can be resumed
            raise self._fatal(what, error) from None

    def _fatal(self, what: str, error: Exception) -> FatalTeacherError:
        status = getattr(error, "status_code", None)
        hint = (
            "; this server has no Batch API (vLLM serves none: use --batch-file-only and `vllm run-batch`)"
            if status in (404, 405)
            else ""
        )
        detail = redact_text(str(getattr(error, "message", error)).split("\n")[0])
        return FatalTeacherError(
            f"could not {what} at {self.teacher.config.shown_url()}: {detail}{hint}; batches already submitted are "
            f"recorded in {self.state.path} and the same command resumes them"
        )


def _line_error(line: dict) -> str | None:
    """Why a batch output line holds no answer, or None when it holds one."""
    error = line.get("error")
    if error:
        if isinstance(error, dict):
            return f"{error.get('code') or 'error'}: {error.get('message') or ''}".strip()
        return str(error)
    response = line.get("response")
    if not isinstance(response, dict):
        return "no response"
    status = response.get("status_code", 200)
    if status != 200:
        body = response.get("body") or {}
        inner = body.get("error", body) if isinstance(body, dict) else {}
        message = inner.get("message") if isinstance(inner, dict) else None
        return f"{status}: {message or 'no message'}"
    return None
