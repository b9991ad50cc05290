"""The teacher client: the official `openai` AsyncOpenAI with a concurrency limit, optional RPM/TPM
limits, per-request timeouts, retries with exponential backoff and jitter (honouring Retry-After), and
the response cache. The API key is read from the environment variable the config names and never leaves
this module."""

from __future__ import annotations

import asyncio
import email.utils
import functools
import json
import logging
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from prefkit.config import ConfigPath
from prefkit.errors import ConfigError, FatalTeacherError, TeacherError
from prefkit.privacy import redact_text, redact_url, register_secret
from prefkit.teacher.cache import ResponseCache, cache_key
from prefkit.teacher.ratelimit import TokenBucket

log = logging.getLogger(__name__)


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


def split_openai_target(target: str) -> tuple[str, str]:
    """`openai:MODEL@BASE_URL` -> (model, base URL), split at the first `@` (a URL may hold user:password@);
    anything else is a ValueError saying what is wrong."""
    model, sep, url = target.removeprefix("openai:").partition("@")
    if not target.startswith("openai:") or not sep or not model or not url:
        raise ValueError("expected openai:MODEL@BASE_URL")
    check_http_url(url)
    return model, url


# Statuses worth another attempt: timeouts, conflicts and rate limits, and server errors except the ones that
# say the server cannot ever do this (501 Not Implemented, 505 HTTP Version Not Supported).
TEMPORARY = {408, 409, 425, 429}
PERMANENT_5XX = {501, 505}


def temporary(status: int) -> bool:
    """Whether an HTTP status from the teacher may go away on its own (so the request is retried)."""
    return status in TEMPORARY or (status >= 500 and status not in PERMANENT_5XX)


class TeacherConfig(BaseModel):
    """Where the teacher is and how hard prefkit may push it."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = Field(None, description="OpenAI-compatible base URL, e.g. http://localhost:8000/v1 (vLLM).")
    model: str | None = Field(None, description="Model name as the server knows it.")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable holding the API key (never logged).")
    temperature: float | None = Field(0.7, ge=0, le=2, description="Sampling temperature.")
    top_p: float | None = Field(None, gt=0, le=1, description="Nucleus sampling.")
    max_tokens: int | None = Field(512, ge=1, description="Most tokens per answer.")
    seed: int | None = Field(None, description="Sampling seed, where the server supports one.")
    extra_body: dict[str, Any] = Field(default_factory=dict, description="Extra request fields (e.g. vLLM's top_k).")
    concurrency: int = Field(16, ge=1, description="Requests in flight at once.")
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
    cache: ConfigPath | None = Field(
        None, description="SQLite cache path [default: beside the output, OUT.cache.sqlite]."
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None:
            check_http_url(url)
        return url

    def require(self, source: str, flags: bool = False) -> None:
        """A teacher URL and model are required before any work starts; `flags`: the command has --base-url
        and --model, so the message may suggest them."""
        for name in ("base_url", "model"):
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


@dataclass
class Answer:
    """One sampled assistant message with what it cost."""

    message: dict
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency: float = 0.0
    cached: bool = False


@dataclass
class Usage:
    """Running totals for the summary."""

    requests: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    errors: dict[str, int] = field(default_factory=dict)


@functools.cache
def _raw_response_class() -> type:
    """The HTTP response class of the HTTP library this `openai` release is built on (httpx, or httpx2 in 3.x):
    asking the SDK for it as `cast_to` returns the raw response unparsed. Looked up on first use, so loading a
    recipe or `prefkit --help` never imports the SDK's internals."""
    from openai import _base_client

    module = getattr(_base_client, "httpx2", None) or _base_client.httpx
    return module.Response


class Teacher:
    """Async chat completions with limits, retries and caching; use as `async with Teacher(...)`."""

    def __init__(self, config: TeacherConfig, cache: ResponseCache | None = None):
        from openai import AsyncOpenAI

        self.config = config
        self.cache = cache
        self.usage = Usage()
        self._client = AsyncOpenAI(
            base_url=config.base_url,
            api_key=_key(config.api_key_env),
            timeout=config.timeout,
            max_retries=0,
        )
        self._slots = asyncio.Semaphore(config.concurrency)
        self._rpm = TokenBucket(config.requests_per_minute) if config.requests_per_minute else None
        self._tpm = TokenBucket(config.tokens_per_minute) if config.tokens_per_minute else None

    async def __aenter__(self) -> Teacher:
        return self

    async def __aexit__(self, *exc) -> None:
        await self._client.close()

    async def preflight(self) -> None:
        """Fail fast, with one clear line, on an unreachable URL, a bad key or a model the server lacks."""
        import openai

        url = redact_url(self.config.base_url)
        try:
            models = await self._client.models.list()
        except openai.AuthenticationError:
            raise FatalTeacherError(
                f"the teacher at {url} refused the API key (401); check ${self.config.api_key_env}"
            ) from None
        except openai.APIConnectionError as error:
            raise FatalTeacherError(
                f"cannot reach the teacher at {url} ({_cause(error)}); is the server running?"
            ) from None
        except openai.APIStatusError:
            return  # servers without /models are fine; the first request will tell
        names = [model.id for model in models.data]
        if names and self.config.model not in names:
            raise FatalTeacherError(
                f"model {self.config.model!r} is not served at {url}; available: {', '.join(names[:10])}"
            )

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
        sampling = {**self.config.sampling(), **(sampling or {})}
        keys = [cache_key(self.config.model, messages, sampling, sample + index, tools) for index in range(n)]
        answers: list[Answer | None] = [None] * n
        if self.cache is not None:
            for index, key in enumerate(keys):
                hit = self.cache.get(key)
                if hit is not None:
                    answers[index] = Answer(message=hit["message"], cached=True)
        missing = [index for index, answer in enumerate(answers) if answer is None]
        if missing:
            batches = [missing] if (self.config.supports_n and len(missing) > 1) else [[i] for i in missing]
            results = await asyncio.gather(*(self._request(messages, len(batch), tools, sampling) for batch in batches))
            for batch, fresh in zip(batches, results):
                for index, answer in zip(batch, fresh):
                    answers[index] = answer
                    if self.cache is not None:
                        self.cache.put(keys[index], {"message": answer.message})
        return [answer for answer in answers if answer is not None]

    async def _request(
        self, messages: list[dict], n: int, tools: list[dict] | None, sampling: dict[str, Any]
    ) -> list[Answer]:
        import openai

        settings = {key: value for key, value in sampling.items() if value is not None}
        last_error = "no attempt made"
        for attempt in range(self.config.max_attempts):
            async with self._slots:
                if self._rpm:
                    await self._rpm.take()
                if self._tpm:
                    await self._tpm.take(_estimate_tokens(messages) + (sampling.get("max_tokens") or 0) * n)
                started = time.perf_counter()
                self.usage.requests += 1
                body = {"model": self.config.model, "messages": messages, **settings}
                if n > 1:
                    body["n"] = n
                if tools:
                    body["tools"] = tools
                try:
                    # The low-level post skips the SDK's recursive TypedDict transform of `messages` and its
                    # model construction (together about 1 ms of CPU a request); errors are raised the same way.
                    response = await self._client.post("/chat/completions", cast_to=_raw_response_class(), body=body)
                    latency = time.perf_counter() - started
                    answers = _answers(json.loads(response.content), latency)
                    if len(answers) < n:
                        raise ValueError(f"asked for {n} choices, got {len(answers)}")
                    return answers
                except openai.AuthenticationError:
                    raise FatalTeacherError(
                        f"the teacher refused the API key (401); check ${self.config.api_key_env}"
                    ) from None
                except openai.NotFoundError as error:
                    raise FatalTeacherError(
                        f"the teacher answered 404: {_message(error)}; check the model name and base URL"
                    ) from None
                except (openai.BadRequestError, openai.PermissionDeniedError, openai.UnprocessableEntityError) as error:
                    raise FatalTeacherError(
                        f"the teacher rejected the request ({error.status_code}): {_message(error)}"
                    ) from None
                except openai.RateLimitError as error:
                    wait = _retry_after(error) or self._backoff(attempt)
                    last_error = "429 rate limited"
                except openai.APIStatusError as error:
                    if not temporary(error.status_code):
                        raise FatalTeacherError(
                            f"the teacher answered {error.status_code}: {_message(error)}; retrying will not help"
                        ) from None
                    wait, last_error = self._backoff(attempt), f"{error.status_code} {_message(error)}"
                except openai.APITimeoutError:
                    wait, last_error = self._backoff(attempt), f"timed out after {self.config.timeout:g}s"
                except openai.APIConnectionError as error:
                    wait, last_error = self._backoff(attempt), f"connection failed ({_cause(error)})"
                except (ValueError, TypeError, KeyError, AttributeError, openai.APIResponseValidationError) as error:
                    wait, last_error = self._backoff(attempt), f"malformed response ({type(error).__name__})"
            kind = last_error.split(" ")[0]
            self.usage.errors[kind] = self.usage.errors.get(kind, 0) + 1
            if attempt + 1 < self.config.max_attempts:
                self.usage.retries += 1
                log.debug("teacher attempt %d failed (%s); retrying in %.2fs", attempt + 1, last_error, wait)
                await asyncio.sleep(wait)
        raise TeacherError(f"gave up after {self.config.max_attempts} attempts: {last_error}")

    def _backoff(self, attempt: int) -> float:
        # Full jitter: spreads the retries of many concurrent requests instead of synchronising them.
        return random.uniform(0, min(self.config.backoff_max, self.config.backoff_initial * 2**attempt))


def _answers(response: dict, latency: float) -> list[Answer]:
    usage = response.get("usage") or {}
    prompt_tokens = usage.get("prompt_tokens") or 0
    completion_tokens = usage.get("completion_tokens") or 0
    answers = []
    choices = sorted(response["choices"], key=lambda choice: choice.get("index", 0))
    for number, choice in enumerate(choices):
        raw = choice["message"]
        message = {"role": "assistant", "content": raw.get("content")}
        if raw.get("tool_calls"):
            message["tool_calls"] = [{k: v for k, v in call.items() if v is not None} for call in raw["tool_calls"]]
        if message["content"] is None and "tool_calls" not in message:
            raise ValueError("empty message")
        answers.append(
            Answer(
                message=message,
                prompt_tokens=prompt_tokens if number == 0 else 0,
                completion_tokens=completion_tokens // max(1, len(choices)),
                latency=latency,
            )
        )
    return answers


def _retry_after(error: Any) -> float | None:
    headers = getattr(getattr(error, "response", None), "headers", None) or {}
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


def _message(error: Any) -> str:
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return redact_text(str(inner["message"]))
    return redact_text(str(getattr(error, "message", error)).split("\n")[0])


def _cause(error: BaseException) -> str:
    cause = error.__cause__ or error.__context__
    return type(cause).__name__ if cause else "connection error"


def _estimate_tokens(messages: list[dict]) -> int:
    return sum(len(str(m.get("content") or "")) for m in messages) // 4
