"""A stand-in OpenAI-compatible server for offline tests, benchmarks and dry runs.

It speaks real HTTP/1.1 (keep-alive) on 127.0.0.1 and answers `GET /v1/models` and
`POST /v1/chat/completions` with canned agent turns, and it misbehaves on request: latency, 500s,
429s with Retry-After, malformed bodies, hangs, a wrong model name (404) or a wrong key (401). With
`rate_window` it keeps a request window as OpenAI does and says so in `x-ratelimit-*` headers (429 past it).
It also serves the Files and Batches APIs (`/v1/files`, `/v1/batches`: create, retrieve, list, cancel,
output and error files) with batches that finish `batch_delay` seconds after they are created and lines that
fail or expire at configured rates. It counts requests by content (online and in batches) so tests can prove
that nothing was asked twice; several instances side by side are several endpoints.

    python -m prefkit.testing.standin --port 8011 --latency 0.5

The turns it answers with come from `prefkit/testing/agents.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import email.parser
import hashlib
import json
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from prefkit.testing.agents import DBBenchAgent, default_responder


@dataclass
class Behaviour:
    """How the stand-in misbehaves; rates are probabilities per request."""

    latency: float = 0.0
    error_rate: float = 0.0
    error_status: int = 500  # what an error answers (501: a server that can never do it)
    echo_key: bool = False  # errors quote the request's Authorization header, as a careless proxy might
    rate_limit_rate: float = 0.0
    retry_after: float = 0.05
    malformed_rate: float = 0.0
    hang_rate: float = 0.0
    hang_seconds: float = 30.0
    models: tuple[str, ...] = ("teacher-model",)
    api_key: str | None = None
    supports_n: bool = True
    seed: int = 0
    responder: Callable[[dict, int], str] = default_responder
    rate_window: tuple[int, float] | None = None  # (requests, seconds): a window as OpenAI keeps one
    batch_delay: float = 0.0  # seconds from a batch's creation to its end
    batch_fail_rate: float = 0.0  # share of batch lines answered with a 500 in the error file
    batch_expire_rate: float = 0.0  # share of lines left unanswered: the batch ends "expired"
    batch_api: bool = True  # False: no /v1/files or /v1/batches, as vLLM's server


@dataclass
class Stats:
    """What the stand-in saw: requests by content key, outcomes, and the last headers it received."""

    requests: int = 0
    completions: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)
    bodies: list[dict] = field(default_factory=list)
    headers: list[dict] = field(default_factory=list)
    batches_created: int = 0
    batch_lines: Counter = field(default_factory=Counter)  # custom ids submitted, over every batch


def request_key(body: dict) -> str:
    """Content key of a chat request: messages plus sampling settings (what a cache would key on)."""
    keep = {k: v for k, v in body.items() if k not in ("stream",)}
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


class StandinServer:
    """The server; `start()` runs it in a background thread, `url` is its base URL (with /v1)."""

    def __init__(self, behaviour: Behaviour | None = None, port: int = 0, ssl_context=None):
        self.behaviour = behaviour or Behaviour()
        self.ssl_context = ssl_context  # serve https with this context
        self.connections = 0  # TCP connections accepted
        self.stats = Stats()
        self.port = port
        self._rng = random.Random(self.behaviour.seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.files: dict[str, dict] = {}
        self.batches: dict[str, dict] = {}
        self._window = [0.0, 0]  # end of the current rate-limit window, requests counted in it

    @property
    def url(self) -> str:
        """Base URL for an OpenAI client."""
        return f"{'https' if self.ssl_context else 'http'}://127.0.0.1:{self.port}/v1"

    def start(self) -> StandinServer:
        """Serve in a daemon thread; returns once the port is bound and listening."""
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("stand-in server did not start")
        return self

    def stop(self) -> None:
        """Close the listening socket, cancel open connections and stop the loop."""
        if self._loop and self._server:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(5)

    async def _shutdown(self) -> None:
        self._server.close()
        pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def __enter__(self) -> StandinServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", self.port, ssl=self.ssl_context)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def serve_forever(self) -> None:
        """Serve in the current event loop (for `python -m`)."""
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        print(f"stand-in teacher listening on {self.url}", flush=True)
        await self._server.serve_forever()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                request_line = await reader.readline()
                if not request_line:
                    break
                method, path, _ = request_line.decode("latin-1").split(" ", 2)
                headers = {}
                while True:
                    line = await reader.readline()
                    if line in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = line.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                if headers.get("transfer-encoding", "").lower() == "chunked":
                    body = b""
                    while size := int((await reader.readline()).split(b";")[0].strip() or b"0", 16):
                        body += await reader.readexactly(size)
                        await reader.readline()
                    await reader.readline()
                else:
                    body = await reader.readexactly(int(headers.get("content-length", 0) or 0))
                status, extra, payload = await self._handle(method, path, headers, body)
                if status == 0:  # hang: never answer, drop the connection later
                    await asyncio.sleep(self.behaviour.hang_seconds)
                    break
                typed = any(line.startswith("content-type:") for line in extra)
                head = [
                    f"HTTP/1.1 {status} {'OK' if status == 200 else 'ERR'}",
                    *([] if typed else ["content-type: application/json"]),
                    f"content-length: {len(payload)}",
                    "connection: keep-alive",
                    *extra,
                ]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + payload)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        except asyncio.CancelledError:
            pass  # shutting down; finishing normally keeps asyncio's stream callback quiet
        finally:
            writer.close()

    async def _handle(self, method: str, path: str, headers: dict, raw: bytes) -> tuple[int, list[str], bytes]:
        behaviour, stats = self.behaviour, self.stats
        stats.requests += 1
        stats.headers.append(headers)
        if behaviour.api_key is not None and headers.get("authorization") != f"Bearer {behaviour.api_key}":
            stats.outcomes["401"] += 1
            return 401, [], _error("Incorrect API key provided.", "invalid_api_key")
        if method == "GET" and path.rstrip("/").endswith("/models"):
            data = [{"id": name, "object": "model", "created": 0, "owned_by": "standin"} for name in behaviour.models]
            return 200, [], json.dumps({"object": "list", "data": data}).encode()
        route = path.split("?")[0].rstrip("/")
        if ("/files" in route or "/batches" in route) and behaviour.batch_api:
            return self._batch_api(method, route, path, headers, raw)
        if method != "POST" or not route.endswith("/chat/completions"):
            return 404, [], _error(f"no route {method} {path}", "not_found")
        body = json.loads(raw)
        if body.get("model") not in behaviour.models:
            stats.outcomes["404"] += 1
            return 404, [], _error(f"The model `{body.get('model')}` does not exist.", "model_not_found")
        limits: list[str] = []
        if behaviour.rate_window:
            remaining = self._count_in_window()
            if remaining is None:
                stats.outcomes["429"] += 1
                return 429, self._window_headers(0), _error("Rate limit reached for requests", "rate_limit_exceeded")
        if behaviour.latency:
            await asyncio.sleep(behaviour.latency)
        if behaviour.rate_window:  # what was left when it was counted, and the reset as of the answer
            limits = self._window_headers(remaining)
        roll = self._rng.random()
        for name, rate in (
            ("hang", behaviour.hang_rate),
            ("500", behaviour.error_rate),
            ("429", behaviour.rate_limit_rate),
            ("malformed", behaviour.malformed_rate),
        ):
            if roll < rate:
                stats.outcomes[name] += 1
                if name == "hang":
                    return 0, [], b""
                if name == "500":
                    said = (
                        f"internal error for {headers.get('authorization')}" if behaviour.echo_key else "internal error"
                    )
                    return behaviour.error_status, [], _error(said, "server_error")
                if name == "429":
                    return 429, [f"retry-after: {behaviour.retry_after}"], _error("Rate limit reached", "rate_limit")
                return 200, [], b'{"id": "chatcmpl-x", "choices": [{"index": 0, "message": {"role": "assis'
            roll -= rate
        status, payload = self._complete(body)
        return status, limits, payload

    def _complete(self, body: dict) -> tuple[int, bytes]:
        """A chat completion answered (counted by content): (status, response body)."""
        behaviour, stats = self.behaviour, self.stats
        n = int(body.get("n") or 1)
        if n > 1 and not behaviour.supports_n:
            return 400, _error("n > 1 is not supported", "invalid_request_error")
        stats.outcomes["ok"] += 1
        stats.completions[request_key(body)] += 1
        stats.bodies.append(body)
        choices = []
        for index in range(n):
            content = behaviour.responder(body, index)
            choices.append(
                {"index": index, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
            )
        prompt_tokens = sum(len((m.get("content") or "").split()) for m in body.get("messages", []))
        completion_tokens = sum(len(c["message"]["content"].split()) for c in choices)
        response = {
            "id": f"chatcmpl-{stats.requests}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        return 200, json.dumps(response).encode()

    # -- rate-limit window -------------------------------------------------------------------------------

    def _count_in_window(self) -> int | None:
        """Count a request in the current window: the requests left after it, or None when none was left."""
        limit, seconds = self.behaviour.rate_window
        now = time.monotonic()
        if now >= self._window[0]:
            self._window = [now + seconds, 0]
        if self._window[1] >= limit:
            return None
        self._window[1] += 1
        return limit - self._window[1]

    def _window_headers(self, remaining: int) -> list[str]:
        limit = self.behaviour.rate_window[0]
        reset_ms = max(0, math.ceil((self._window[0] - time.monotonic()) * 1000))
        return [
            f"x-ratelimit-limit-requests: {limit}",
            f"x-ratelimit-remaining-requests: {remaining}",
            f"x-ratelimit-reset-requests: {reset_ms}ms",
        ]

    # -- Files and Batches -------------------------------------------------------------------------------

    def _batch_api(self, method: str, route: str, path: str, headers: dict, raw: bytes) -> tuple[int, list, bytes]:
        parts = route.split("/")
        tail = parts[parts.index("files") if "files" in parts else parts.index("batches") :]
        if tail == ["files"] and method == "POST":
            return self._upload(headers, raw)
        if tail[0] == "files" and len(tail) >= 2 and tail[1] in self.files:
            entry = self.files[tail[1]]
            if len(tail) == 3 and tail[2] == "content":
                return 200, ["content-type: application/octet-stream"], entry["data"]
            return 200, [], json.dumps(entry["object"]).encode()
        if tail == ["batches"] and method == "POST":
            return self._create_batch(json.loads(raw))
        if tail == ["batches"] and method == "GET":
            query = dict(p.split("=", 1) for p in path.partition("?")[2].split("&") if "=" in p)
            ordered = sorted(self.batches.values(), key=lambda b: b["order"], reverse=True)
            if query.get("after") in self.batches:
                ordered = [b for b in ordered if b["order"] < self.batches[query["after"]]["order"]]
            page = ordered[: int(query.get("limit", 20))]
            data = [self._batch_object(b["object"]["id"]) for b in page]
            more = len(ordered) > len(page)
            listing = {
                "object": "list",
                "data": data,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
                "has_more": more,
            }
            return 200, [], json.dumps(listing).encode()
        if tail[0] == "batches" and len(tail) >= 2 and tail[1] in self.batches:
            if len(tail) == 3 and tail[2] == "cancel" and method == "POST":
                batch = self.batches[tail[1]]["object"]
                if batch["status"] not in ("completed", "failed", "expired", "cancelled"):
                    batch["status"], batch["cancelled_at"] = "cancelled", int(time.time())
            return 200, [], json.dumps(self._batch_object(tail[1])).encode()
        return 404, [], _error(f"no route {method} {path}", "not_found")

    def _add_file(self, data: bytes, filename: str, purpose: str) -> str:
        file_id = f"file-{len(self.files) + 1:06d}"
        self.files[file_id] = {
            "data": data,
            "object": {
                "id": file_id,
                "object": "file",
                "bytes": len(data),
                "created_at": int(time.time()),
                "filename": filename,
                "purpose": purpose,
                "status": "processed",
            },
        }
        return file_id

    def _upload(self, headers: dict, raw: bytes) -> tuple[int, list, bytes]:
        message = email.parser.BytesParser().parsebytes(
            f"content-type: {headers.get('content-type', '')}\r\n\r\n".encode() + raw
        )
        fields, filename, data = {}, "upload.jsonl", b""
        for part in message.get_payload() if message.is_multipart() else []:
            name = part.get_param("name", header="content-disposition")
            if name == "file":
                filename = part.get_filename() or filename
                data = part.get_payload(decode=True) or b""
            else:
                fields[name] = (part.get_payload(decode=True) or b"").decode()
        if fields.get("purpose") != "batch" or not data:
            return 400, [], _error("expected a multipart upload with purpose=batch and a file", "invalid_request_error")
        file_id = self._add_file(data, filename, "batch")
        return 200, [], json.dumps(self.files[file_id]["object"]).encode()

    def _create_batch(self, body: dict) -> tuple[int, list, bytes]:
        if body.get("input_file_id") not in self.files:
            return 404, [], _error(f"No such File object: {body.get('input_file_id')}", "not_found")
        if body.get("endpoint") != "/v1/chat/completions":
            return 400, [], _error("only /v1/chat/completions is served", "invalid_request_error")
        self.stats.batches_created += 1
        batch_id = f"batch_{len(self.batches) + 1:06d}"
        now = int(time.time())
        self.batches[batch_id] = {
            "order": len(self.batches),
            "due": time.monotonic() + self.behaviour.batch_delay,
            "object": {
                "id": batch_id,
                "object": "batch",
                "endpoint": body["endpoint"],
                "errors": None,
                "input_file_id": body["input_file_id"],
                "completion_window": body.get("completion_window", "24h"),
                "status": "in_progress",
                "output_file_id": None,
                "error_file_id": None,
                "created_at": now,
                "in_progress_at": now,
                "expires_at": now + 86400,
                "request_counts": {"total": 0, "completed": 0, "failed": 0},
                "metadata": body.get("metadata"),
            },
        }
        lines = self.files[body["input_file_id"]]["data"].splitlines()
        self.batches[batch_id]["object"]["request_counts"]["total"] = len([line for line in lines if line.strip()])
        return 200, [], json.dumps(self._batch_object(batch_id)).encode()

    def _batch_object(self, batch_id: str) -> dict:
        """The batch as it stands now: a batch past its due time is run (once) and ends."""
        entry = self.batches[batch_id]
        batch = entry["object"]
        if batch["status"] == "in_progress" and time.monotonic() >= entry["due"]:
            self._finish(batch)
        return batch

    def _finish(self, batch: dict) -> None:
        behaviour = self.behaviour
        outputs, errors, problems = [], [], []
        lines = [line for line in self.files[batch["input_file_id"]]["data"].splitlines() if line.strip()]
        requests = []
        for number, line in enumerate(lines, start=1):
            try:
                request = json.loads(line)
                requests.append((request["custom_id"], request["body"]))
            except (ValueError, KeyError, TypeError):
                problems.append({"code": "invalid_json", "line": number, "message": "not a batch request line"})
        if problems:
            batch.update(status="failed", failed_at=int(time.time()), errors={"object": "list", "data": problems})
            return
        expired = False
        for number, (custom_id, body) in enumerate(requests):
            self.stats.batch_lines[custom_id] += 1
            roll = self._rng.random()
            line_id = f"batch_req_{batch['id']}_{number}"
            if roll < behaviour.batch_expire_rate:
                expired = True
                message = "This request could not be executed before the completion window expired."
                errors.append(
                    {
                        "id": line_id,
                        "custom_id": custom_id,
                        "response": None,
                        "error": {"code": "batch_expired", "message": message},
                    }
                )
                continue
            if roll < behaviour.batch_expire_rate + behaviour.batch_fail_rate:
                status, payload = 500, _error("internal error", "server_error")
            elif body.get("model") not in behaviour.models:
                status, payload = 404, _error(f"The model `{body.get('model')}` does not exist.", "model_not_found")
            else:
                status, payload = self._complete(body)
            row = {
                "id": line_id,
                "custom_id": custom_id,
                "response": {"status_code": status, "request_id": line_id, "body": json.loads(payload)},
                "error": None,
            }
            (outputs if status == 200 else errors).append(row)
        for rows, key in ((outputs, "output_file_id"), (errors, "error_file_id")):
            if rows:
                data = "".join(json.dumps(row) + "\n" for row in rows).encode()
                batch[key] = self._add_file(data, f"{batch['id']}_{key}.jsonl", "batch_output")
        now = int(time.time())
        batch["request_counts"].update(completed=len(outputs), failed=len(errors))
        batch.update(status="expired" if expired else "completed", finalizing_at=now)
        batch["expired_at" if expired else "completed_at"] = now


def _error(message: str, code: str) -> bytes:
    return json.dumps({"error": {"message": message, "type": code, "code": code}}).encode()


def main(argv: list[str] | None = None) -> None:
    """Run the stand-in in the foreground."""
    parser = argparse.ArgumentParser(description="A local OpenAI-compatible stand-in teacher.")
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--error-rate", type=float, default=0.0)
    parser.add_argument("--model", action="append", default=None)
    parser.add_argument("--dbbench-tasks", help="Play DBBench episodes of this AgentBench JSONL (agent mode).")
    parser.add_argument("--correct-share", type=float, default=0.5, help="Agent mode: share of tasks done right.")
    parser.add_argument("--batch-delay", type=float, default=0.0, help="Seconds until a batch ends.")
    parser.add_argument("--batch-fail-rate", type=float, default=0.0, help="Share of batch lines that fail.")
    args = parser.parse_args(argv)
    behaviour = Behaviour(
        latency=args.latency,
        error_rate=args.error_rate,
        models=tuple(args.model or ["teacher-model"]),
        batch_delay=args.batch_delay,
        batch_fail_rate=args.batch_fail_rate,
    )
    if args.dbbench_tasks:
        behaviour.responder = DBBenchAgent(args.dbbench_tasks, args.correct_share)
    asyncio.run(StandinServer(behaviour, args.port).serve_forever())


if __name__ == "__main__":
    main()
