"""The teacher client: chat completions from one or more OpenAI-compatible endpoints with a concurrency
limit each, optional RPM/TPM limits, the servers' own rate-limit headers, per-request timeouts, retries with
exponential backoff and jitter (honouring Retry-After), and the response cache.

Completions go through aiohttp on uvloop, one session an endpoint (`prefkit/teacher/endpoints.py`): the SDK's
httpx path costs 2-4 ms of CPU a request, which caps one process at a few hundred requests a second. The
`openai` package stays the way prefkit checks a server (models, auth) and uses the Files and Batches APIs
(`prefkit/teacher/batch.py`). The API key is read from the environment variable the config names and never
leaves this module."""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import os
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from prefkit.config import ConfigPath
from prefkit.errors import ConfigError, FatalTeacherError, TeacherError
from prefkit.privacy import redact_text, redact_url, register_secret
from prefkit.teacher.answers import Answer, parse_answers
from prefkit.teacher.cache import ResponseCache, cache_key
from prefkit.teacher.endpoints import Endpoint, Router
from prefkit.teacher.ratelimit import TokenBucket

log = logging.getLogger(__name__)
_WIRE = json.JSONEncoder(ensure_ascii=False)  # made once: json.dumps with an option builds one per call


def check_http_url(url: str) -> None:
    """An OpenAI-compatible base URL: http(s)://HOST[:PORT]/...; anything else is a ValueError naming it."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a port that is not a number or is above 65535
    except ValueError as error:
        raise ValueError(f"{redact_url(url)!r} is not a valid URL ({error})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{redact_url(url)!r} is not an http(s)://HOST/... URL, e.g. http://localhost:8000/v1")


# Statuses worth another attempt: timeouts, conflicts and rate limits, and server errors except the ones that
# say the server cannot ever do this (501 Not Implemented, 505 HTTP Version Not Supported).
TEMPORARY = {408, 409, 425, 429}
PERMANENT_5XX = {501, 505}


def temporary(status: int) -> bool:
    """Whether an HTTP status from the teacher may go away on its own (so the request is retried)."""
    return status in TEMPORARY or (status >= 500 and status not in PERMANENT_5XX)


class BatchConfig(BaseModel):
    """How batches are sent, followed and retried."""

    model_config = ConfigDict(extra="forbid")

    completion_window: str = Field("24h", description="The Batch API's completion window (OpenAI offers 24h).")
    poll_seconds: float = Field(30.0, gt=0, description="Seconds between two looks at a batch's status.")
    retry: Literal["batch", "online"] = Field(
        "batch", description="Failed or expired lines: asked again in a new batch, or online."
    )
    max_attempts: int = Field(3, ge=1, description="Batches one request may be in before its task is failed.")
    max_requests: int = Field(50_000, ge=1, description="Requests per input file (OpenAI allows 50,000).")
    max_bytes: int = Field(200_000_000, ge=1024, description="Bytes per input file (OpenAI allows 200 MB).")
    price_input_per_mtok: float | None = Field(
        None, ge=0, description="Batch price per million prompt tokens [default: the online price]."
    )
    price_output_per_mtok: float | None = Field(
        None, ge=0, description="Batch price per million completion tokens [default: the online price]."
    )


class TeacherConfig(BaseModel):
    """Where the teacher is and how hard prefkit may push it."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | list[str] | None = Field(
        None,
        description="OpenAI-compatible base URL, e.g. http://localhost:8000/v1 (vLLM), or a list of them (the "
        "flag given several times): each request goes to the one with the fewest requests in flight.",
    )
    model: str | None = Field(None, description="Model name as the server knows it.")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable holding the API key (never logged).")
    temperature: float | None = Field(0.7, ge=0, le=2, description="Sampling temperature.")
    top_p: float | None = Field(None, gt=0, le=1, description="Nucleus sampling.")
    max_tokens: int | None = Field(512, ge=1, description="Most tokens per answer.")
    seed: int | None = Field(None, description="Sampling seed, where the server supports one.")
    extra_body: dict[str, Any] = Field(default_factory=dict, description="Extra request fields (e.g. vLLM's top_k).")
    concurrency: int = Field(16, ge=1, description="Requests in flight at once, per endpoint.")
    rest_after: int = Field(
        3, ge=1, description="Failures in a row after which an endpoint is rested (5 s, doubling up to 2 min)."
    )
    requests_per_minute: float | None = Field(None, gt=0, description="Optional request rate limit.")
    tokens_per_minute: float | None = Field(
        None, gt=0, description="Optional token rate limit (prompt estimate + max_tokens)."
    )
    timeout: float = Field(120.0, gt=0, description="Seconds one request may take.")
    max_attempts: int = Field(6, ge=1, description="Attempts per request before the task is marked failed.")
    backoff_initial: float = Field(0.5, gt=0, description="First backoff in seconds (doubles each retry, with jitter).")
    backoff_max: float = Field(30.0, gt=0, description="Longest backoff in seconds.")
    supports_n: bool = Field(True, description="The server accepts n > 1 in one request (vLLM, OpenAI do).")
    price_input_per_mtok: float | None = Field(
        None, ge=0, description="Price per million prompt tokens, for the cost summary."
    )
    price_output_per_mtok: float | None = Field(None, ge=0, description="Price per million completion tokens.")
    mode: Literal["online", "batch"] = Field(
        "online",
        description="online: each request answered as it is sent; batch: generate's requests go through the "
        "OpenAI Batch API (half the price, answers within the completion window).",
    )
    batch: BatchConfig = Field(default_factory=BatchConfig, description="Settings of mode: batch.")
    cache: ConfigPath | None = Field(
        None, description="SQLite cache path [default: beside the output, OUT.cache.sqlite]."
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str | list[str] | None) -> str | list[str] | None:
        for one in [url] if isinstance(url, str) else url or []:
            check_http_url(one)
        if isinstance(url, list):
            if not url:
                raise ValueError("an empty list; give one URL or several")
            if len(set(url)) < len(url):
                raise ValueError("the same URL twice; give each endpoint once")
        return url

    @property
    def urls(self) -> list[str]:
        """The endpoints' base URLs (one or several)."""
        return [self.base_url] if isinstance(self.base_url, str) else list(self.base_url or [])

    def shown_url(self) -> str | list[str] | None:
        """The base URL(s) with any credentials hidden, for records and messages."""
        shown = [redact_url(url) for url in self.urls]
        return shown[0] if isinstance(self.base_url, str) else shown or None

    def require(self, source: str, flags: bool = False, names: tuple[str, ...] = ("base_url", "model")) -> None:
        """A teacher URL and model are required before any work starts (`names`: those needed); `flags`: the
        command has --base-url and --model, so the message may suggest them."""
        for name in names:
            if not getattr(self, name):
                where = f"pass --{name.replace('_', '-')} or set it in --recipe" if flags else "set it in the recipe"
                raise ConfigError(f"{source}: missing required setting 'teacher.{name}' ({where})")

    def sampling(self) -> dict[str, Any]:
        """The sampling settings sent with every request (and part of the cache key)."""
        return {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "seed": self.seed,
            **self.extra_body,
        }

    def request_body(self, messages: list[dict], n: int, tools: list[dict] | None, sampling: dict) -> dict:
        """The chat completion request for `messages` (what goes on the wire, online or in a batch file)."""
        body = {"model": self.model, "messages": messages}
        body.update((key, value) for key, value in sampling.items() if value is not None)
        if n > 1:
            body["n"] = n
        if tools:
            body["tools"] = tools
        return body

    def headers(self) -> dict[str, str]:
        """What every request carries: the key (from the environment, registered as a secret) and, as the SDK
        sends them, the OpenAI organisation and project from OPENAI_ORG_ID / OPENAI_PROJECT_ID."""
        from prefkit import __version__

        headers = {
            "Authorization": f"Bearer {_key(self.api_key_env)}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"prefkit/{__version__}",
        }
        for variable, header in (("OPENAI_ORG_ID", "OpenAI-Organization"), ("OPENAI_PROJECT_ID", "OpenAI-Project")):
            if os.environ.get(variable):
                headers[header] = os.environ[variable]
        return headers


@dataclass
class Usage:
    """Running totals for the summary: requests sent, and the tokens paid for online and through batches."""

    requests: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    batch_prompt_tokens: int = 0
    batch_completion_tokens: int = 0
    errors: dict[str, int] = field(default_factory=dict)


class Teacher:
    """Async chat completions with limits, retries and caching; use as `async with Teacher(...)`."""

    def __init__(self, config: TeacherConfig, cache: ResponseCache | None = None):
        self.config = config
        self.cache = cache
        self.usage = Usage()
        headers = config.headers()
        self.router = Router(
            [Endpoint(url, config.concurrency, headers, config.timeout, config.rest_after) for url in config.urls]
        )
        self._rpm = TokenBucket(config.requests_per_minute) if config.requests_per_minute else None
        self._tpm = TokenBucket(config.tokens_per_minute) if config.tokens_per_minute else None
        self._in_flight: dict[tuple[str, ...], asyncio.Future] = {}

    async def __aenter__(self) -> Teacher:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.router.close()

    def sdk(self, url: str | None = None):
        """The official `openai` client for one endpoint (the first by default): models, files, batches."""
        from openai import AsyncOpenAI

        return AsyncOpenAI(
            base_url=url or self.config.urls[0],
            api_key=_key(self.config.api_key_env),
            timeout=self.config.timeout,
            max_retries=2,
        )

    async def preflight(self) -> None:
        """Fail fast, with one clear line, on an unreachable URL, a bad key or a model a server lacks (every
        endpoint is asked at once)."""
        await asyncio.gather(*(self._preflight(url) for url in self.config.urls))

    async def _preflight(self, url: str) -> None:
        import openai

        shown = redact_url(url)
        client = self.sdk(url)
        try:
            models = await client.models.list()
        except openai.AuthenticationError:
            raise FatalTeacherError(
                f"the teacher at {shown} refused the API key (401); check ${self.config.api_key_env}"
            ) from None
        except openai.APIConnectionError as error:
            raise FatalTeacherError(
                f"cannot reach the teacher at {shown} ({_cause(error)}); is the server running?"
            ) from None
        except openai.APIStatusError:
            return  # servers without /models are fine; the first request will tell
        finally:
            await client.close()
        names = [model.id for model in models.data]
        if names and self.config.model not in names:
            raise FatalTeacherError(
                f"model {self.config.model!r} is not served at {shown}; available: {', '.join(names[:10])}"
            )

    def keys(
        self, messages: list[dict], n: int, tools: list[dict] | None, sampling: dict | None, sample: int
    ) -> tuple[dict[str, Any], list[str]]:
        """The sampling settings of a request (the config's, overridden by `sampling`) and the cache keys of its
        `n` answers to `messages`, the first numbered `sample`."""
        settings = {**self.config.sampling(), **(sampling or {})}
        model = self.config.model
        return settings, [cache_key(model, messages, settings, sample + index, tools) for index in range(n)]

    async def complete(
        self,
        messages: list[dict],
        n: int = 1,
        tools: list[dict] | None = None,
        sampling: dict[str, Any] | None = None,
        sample: int = 0,
    ) -> list[Answer]:
        """`n` answers to `messages` (from the cache where possible), the first numbered `sample` in the cache (a
        rollout's sample k asks for its own answer); raises TeacherError after the last attempt."""
        sampling, keys = self.keys(messages, n, tools, sampling, sample)
        answers: list[Answer | None] = [None] * n
        if self.cache is not None:
            for index, key in enumerate(keys):
                hit = self.cache.get(key)
                if hit is not None:
                    answers[index] = Answer(message=hit["message"], cached=True)
        missing = [index for index, answer in enumerate(answers) if answer is None]
        if missing:
            batches = [missing] if (self.config.supports_n and len(missing) > 1) else [[i] for i in missing]
            if len(batches) == 1:  # the usual case, without the task gather would make for it
                results = [await self._shared(tuple(keys[i] for i in batches[0]), messages, tools, sampling)]
            else:
                results = await asyncio.gather(
                    *(self._shared(tuple(keys[i] for i in b), messages, tools, sampling) for b in batches)
                )
            for batch, fresh in zip(batches, results):
                for index, answer in zip(batch, fresh):
                    answers[index] = answer
                    if self.cache is not None:
                        self.cache.put(keys[index], {"message": answer.message})
        return [answer for answer in answers if answer is not None]

    async def _shared(
        self, keys: tuple[str, ...], messages: list[dict], tools: list[dict] | None, sampling: dict[str, Any]
    ) -> list[Answer]:
        """The answers for `keys`, asked once however many tasks want them at the same moment (tasks with the
        same context): the others wait for the one request and get its answers as cached, costing nothing."""
        waiting = self._in_flight.get(keys)
        if waiting is not None:
            answers = await asyncio.shield(waiting)
            return [Answer(message=answer.message, cached=True) for answer in answers]
        waiting = self._in_flight[keys] = asyncio.get_running_loop().create_future()
        try:
            answers = await self._request(messages, len(keys), tools, sampling)
        except BaseException as error:
            waiting.set_exception(error)
            waiting.exception()  # retrieved: nobody may be waiting, and that is fine
            raise
        else:
            waiting.set_result(answers)
            return answers
        finally:
            del self._in_flight[keys]

    async def _request(
        self, messages: list[dict], n: int, tools: list[dict] | None, sampling: dict[str, Any]
    ) -> list[Answer]:
        payload = _WIRE.encode(self.config.request_body(messages, n, tools, sampling)).encode()
        tokens = _estimate_tokens(messages) + (sampling.get("max_tokens") or 0) * n
        last_error, endpoint = "no attempt made", None
        for attempt in range(self.config.max_attempts):
            if self._rpm:
                await self._rpm.take()
            if self._tpm:
                await self._tpm.take(tokens)
            endpoint = await self.router.acquire(tokens, avoid=endpoint)
            started = time.perf_counter()
            self.usage.requests += 1
            headers: Mapping[str, str] | None = None
            wait = self._backoff(attempt)
            try:
                status, headers, data = await endpoint.post("/chat/completions", payload)
            except TimeoutError:
                failure, last_error = "timeout", f"timed out after {self.config.timeout:g}s at {endpoint.shown}"
            except OSError as error:
                failure, last_error = "connection", f"connection to {endpoint.shown} failed ({type(error).__name__})"
            else:
                latency = time.perf_counter() - started
                if status == 200:
                    try:
                        answers = parse_answers(json.loads(data), n, latency)
                    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as error:
                        failure, last_error = "malformed", f"malformed response ({type(error).__name__}: {error})"[:300]
                    else:
                        self.router.release(endpoint, None, latency, headers)
                        self.usage.prompt_tokens += sum(answer.prompt_tokens for answer in answers)
                        self.usage.completion_tokens += sum(answer.completion_tokens for answer in answers)
                        return answers
                else:
                    failure, last_error = str(status), f"{status} {_message(data)}"
                    fatal = self._fatal(status, data, endpoint)
                    if fatal:
                        self.router.release(endpoint, failure, latency, headers)
                        raise FatalTeacherError(fatal)
                    if status == 429:
                        wait, last_error = _retry_after(headers) or wait, "429 rate limited"
            self.router.release(endpoint, failure, time.perf_counter() - started, headers)
            self.usage.errors[failure] = self.usage.errors.get(failure, 0) + 1
            if attempt + 1 < self.config.max_attempts:
                self.usage.retries += 1
                log.debug("teacher attempt %d failed (%s); retrying in %.2fs", attempt + 1, last_error, wait)
                await asyncio.sleep(wait)
        raise TeacherError(f"gave up after {self.config.max_attempts} attempts: {last_error}")

    def _fatal(self, status: int, data: bytes, endpoint: Endpoint) -> str | None:
        """The one-line error for an answer that no retry can change, or None when retrying may help."""
        message = _message(data)
        if status == 401:
            return f"the teacher at {endpoint.shown} refused the API key (401); check ${self.config.api_key_env}"
        if status == 404:
            return f"the teacher at {endpoint.shown} answered 404: {message}; check the model name and base URL"
        if status in (400, 403, 422):
            return f"the teacher rejected the request ({status}): {message}"
        if not temporary(status):
            return f"the teacher answered {status}: {message}; retrying will not help"
        return None

    def _backoff(self, attempt: int) -> float:
        # Full jitter: spreads the retries of many concurrent requests instead of synchronising them.
        return random.uniform(0, min(self.config.backoff_max, self.config.backoff_initial * 2**attempt))


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds a server asked to wait (Retry-After as seconds or an HTTP date, or retry-after-ms), or None."""
    headers = headers or {}
    if headers.get("retry-after-ms"):
        try:
            return float(headers["retry-after-ms"]) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (ValueError, TypeError):
        return None  # unreadable: the backoff decides
    return max(0.0, parsed.timestamp() - time.time())


def _key(variable: str) -> str:
    """The API key from the environment, registered so that no message or log line can show it."""
    key = os.environ.get(variable) or "EMPTY"
    register_secret(key)
    return key


def _message(data: bytes) -> str:
    """The message of an error answer: its JSON `error.message`, else its first line (secrets hidden)."""
    try:
        body = json.loads(data)
    except ValueError:
        body = None
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return redact_text(str(inner["message"]))
    text = data.decode("utf-8", "replace").strip().split("\n")[0][:200]
    return redact_text(text or "no message")


def _cause(error: BaseException) -> str:
    cause = error.__cause__ or error.__context__
    return type(cause).__name__ if cause else "connection error"


def _estimate_tokens(messages: list[dict]) -> int:
    return sum(len(str(m.get("content") or "")) for m in messages) // 4
