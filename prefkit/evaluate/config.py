"""What `prefkit eval` is told: its settings (`EvalConfig`, the `eval:` section of a recipe) and the models it
compares (`ModelSpec`: a label and a policy spec)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from prefkit.config import ConfigPath
from prefkit.envs.registry import EnvSettings, env_keys_in_place
from prefkit.errors import ConfigError, InputError
from prefkit.policies.base import Concurrency, MaxTokens, PolicySettings, Temperature
from prefkit.policies.local import base_of
from prefkit.policies.spec import PolicySpec
from prefkit.privacy import redact_url


class EvalConfig(BaseModel):
    """Settings of `prefkit eval` (the `eval:` section of a recipe, which compares the dpo stage's base model,
    `before`, with its adapter, `after`)."""

    model_config = ConfigDict(extra="forbid")

    format: str | None = Field(
        None, description="Format the turns must follow (react, alfworld, ...); with --env, the environment's."
    )
    env: EnvSettings | None = Field(
        None,
        description="Play whole episodes in this environment and measure task success (--tasks: its tasks): a "
        "name, or {name: ..., and its settings}.",
    )
    concurrency: Concurrency = Field(16, description="Episodes (with --env) or requests to a server in flight at once.")
    tasks: ConfigPath | None = Field(
        None, description="In a recipe, with env: the benchmark's task file (the command takes --tasks)."
    )
    temperature: Temperature = Field(0.0, description="Sampling temperature (0 = greedy).")
    max_new_tokens: MaxTokens = Field(96, description="Most tokens a generated turn may have.")
    batch_size: int = Field(16, ge=1, le=4096, description="Local generation batch size.")
    limit: int | None = Field(None, ge=1, description="Only the first N tasks.")
    samples: int = Field(
        1, ge=1, le=10_000, description="Turns sampled per task (averaged per task; needs temperature > 0)."
    )
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Sampling and bootstrap seed.")
    max_prompt_tokens: int = Field(
        2048, ge=1, le=1_000_000, description="Longest context given to a local model (its end)."
    )

    @model_validator(mode="before")
    @classmethod
    def _env_keys(cls, data: Any) -> Any:
        return env_keys_in_place(data)

    @model_validator(mode="after")
    def _format_or_env(self) -> EvalConfig:
        if self.env is None and self.format is None:
            raise ValueError("give the format the turns must follow (--format), or an environment (--env)")
        if self.env is not None and self.format not in (None, self.env.format):
            raise ValueError(
                f"the {self.env.name} environment reads its turns in the {self.env.format} format, not {self.format}"
            )
        return self

    def policy_settings(self) -> PolicySettings:
        """How every compared model samples."""
        return PolicySettings(
            temperature=self.temperature,
            max_tokens=self.max_new_tokens,
            concurrency=self.concurrency,
            batch_size=self.batch_size,
            max_prompt_tokens=self.max_prompt_tokens,
            seed=self.seed,
        )


LABEL = re.compile(r"(?!\.)[A-Za-z0-9._-]{1,64}")


@dataclass
class ModelSpec:
    """A model to evaluate: a label (it names files) and a policy spec."""

    label: str
    target: str

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        """`[LABEL=]POLICY`, POLICY one of the policy forms (`prefkit/policies/spec.py`)."""
        label, sep, target = text.partition("=")
        if not sep or target.startswith("//") or ":" in label:
            label, target = "", text
        if label and not LABEL.fullmatch(label):
            raise ConfigError(f"--model {label}=...: a label is letters, digits, '.', '-' and '_' (it names files)")
        spec = cls(label, target).policy  # a malformed policy is reported before any work
        if not label:  # the model's own name, made safe to use in file names
            label = spec.model if spec.kind == "openai" else Path(spec.text).name
            label = re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip(".-") or "model"
        return cls(label, target)

    @property
    def policy(self) -> PolicySpec:
        """The policy this model is (a malformed one is a ConfigError naming the --model)."""
        try:
            return PolicySpec.parse(self.target)
        except ValueError as error:
            model, sep, url = self.target.partition("@")
            shown = f"{model}{sep}{redact_url(url)}" if sep else self.target
            raise ConfigError(f"--model {shown!r}: {error}") from None

    @property
    def shown(self) -> str:
        """The target as it may be recorded and printed: a URL without its credentials."""
        return self.policy.shown


def adapter_models(adapter: Path) -> list[ModelSpec]:
    """What a recipe's eval compares: the base (`before`) and the adapter (`after`), or with DPO variants
    (ADAPTER/variants.json) the base and every variant under its own name."""
    listing = adapter / "variants.json"
    if not listing.exists():
        return [ModelSpec("before", base_of(adapter)), ModelSpec("after", str(adapter))]
    from prefkit.jsonl import read_json

    names = list(read_json(listing, "the dpo stage's list of variants", "run the dpo stage again")["variants"])
    if not names:
        raise InputError("names no variant; run the dpo stage again", str(listing))
    return [ModelSpec("before", base_of(adapter / names[0])), *(ModelSpec(n, str(adapter / n)) for n in names)]


def check_models(models: list[ModelSpec]) -> None:
    """Labels differ, and a local model's folder holds a checkpoint or an adapter: found before any work, not
    after the first model ran."""
    if not models:
        raise ConfigError("give at least one --model")
    labels = [model.label for model in models]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"model labels must differ ({', '.join(labels)}); name them LABEL=PATH")
    for model in models:
        model.policy.check_folder()
