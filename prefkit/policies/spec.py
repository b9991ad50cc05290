"""The policy grammar, read here and nowhere else: `openai:MODEL@BASE_URL` (an OpenAI-compatible server through
the teacher client), `replay:FILE.jsonl` (turns written elsewhere) or a local checkpoint or adapter folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from prefkit.errors import InputError
from prefkit.privacy import redact_url

FORMS = "openai:MODEL@BASE_URL, replay:FILE.jsonl, or a checkpoint or adapter folder"
OPENAI, REPLAY = "openai:", "replay:"


def split_openai_target(target: str) -> tuple[str, str]:
    """`openai:MODEL@BASE_URL` -> (model, base URL), split at the first `@` (a URL may hold user:password@);
    anything else is a ValueError saying what is wrong."""
    from prefkit.teacher.client import check_http_url

    model, sep, url = target.removeprefix(OPENAI).partition("@")
    if not target.startswith(OPENAI) or not sep or not model or not url:
        raise ValueError("expected openai:MODEL@BASE_URL")
    check_http_url(url)
    return model, url


@dataclass(frozen=True)
class PolicySpec:
    """A policy as the user named it: `kind` is openai, replay or local; `target` the text after the prefix."""

    kind: Literal["openai", "replay", "local"]
    target: str
    model: str | None = None
    base_url: str | None = None

    @classmethod
    def parse(cls, text: str) -> PolicySpec:
        """Read one policy; a malformed `openai:` form is a ValueError saying what is wrong and naming the three
        forms (a folder is checked by `check_folder`, once the paths may be looked at)."""
        if "\0" in text:
            raise ValueError(f"a policy cannot hold a NUL byte (a policy is {FORMS})")
        if text.startswith(OPENAI):
            try:
                model, base_url = split_openai_target(text)
            except ValueError as error:
                raise ValueError(f"{error} (a policy is {FORMS})") from None
            return cls("openai", text, model, base_url)
        if text.startswith(REPLAY):
            if not text[len(REPLAY) :]:
                raise ValueError(f"replay: needs a file (a policy is {FORMS})")
            return cls("replay", text[len(REPLAY) :])
        if not text:
            raise ValueError(f"an empty policy (a policy is {FORMS})")
        return cls("local", text)

    @property
    def path(self) -> Path | None:
        """The file or folder the policy reads (a replay file, a local model), or None."""
        return None if self.kind == "openai" else Path(self.target)

    @property
    def text(self) -> str:
        """The spec as it was written."""
        return self.target if self.kind == "local" else f"{self.kind}:{self.target}"

    @property
    def label(self) -> str:
        """What a trajectory record says played it: a server's spec without credentials, a replay file's name,
        a local model's folder as given."""
        if self.kind == "replay":
            return f"{REPLAY}{Path(self.target).name}"
        return self.shown

    @property
    def shown(self) -> str:
        """The spec as it may be recorded and printed: a URL without its credentials."""
        if self.kind == "openai":
            return f"{OPENAI}{self.model}@{redact_url(self.base_url)}"
        return self.text

    def is_model_folder(self) -> bool:
        """A local policy's folder holds a checkpoint (config.json) or an adapter (adapter_config.json)."""
        path = Path(self.target)
        return (path / "config.json").exists() or (path / "adapter_config.json").exists()

    def check_folder(self) -> None:
        """A local policy names an existing checkpoint or adapter folder (an InputError naming it otherwise)."""
        if self.kind != "local":
            return
        if not Path(self.target).exists():
            raise InputError("model path not found", self.target)
        if not self.is_model_folder():
            raise InputError(
                "not a model checkpoint or adapter folder (no config.json or adapter_config.json)", self.target
            )


def check_policy(text: str) -> str:
    """A policy spec that parses, and a local one that names a model or adapter folder (a ValueError saying
    what is wrong otherwise): what a config's `policy` setting holds."""
    spec = PolicySpec.parse(text)
    if spec.kind == "local" and not spec.is_model_folder():
        raise ValueError(f"{text!r} is neither {FORMS.replace(', or', ' nor')}")
    return text
