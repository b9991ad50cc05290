"""Decontamination: drop pairs whose prompt overlaps an evaluation set (word n-gram overlap)."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field

from prefkit.config import ConfigPath
from prefkit.filters.base import Filter, PairItem
from prefkit.jsonl import iter_jsonl

_WORD = re.compile(r"\w+")


class DecontaminationFilterConfig(BaseModel):
    """Settings of decontamination against evaluation sets."""

    model_config = ConfigDict(extra="forbid")

    eval_sets: list[ConfigPath] = Field(
        default_factory=list,
        description="JSONL files of tasks (`messages`) or pairs (`prompt`) to keep out of training.",
    )
    ngram_size: int = Field(8, ge=1, description="Words per n-gram.")
    max_overlap_ratio: float = Field(
        0.5, gt=0, le=1, description="Share of a prompt's n-grams found in an eval set at which the pair is dropped."
    )


def _ngrams(text: str, n: int) -> set[int]:
    words = _WORD.findall(text.lower())
    return {hash(tuple(words[i : i + n])) for i in range(len(words) - n + 1)}


def _prompt_text(messages: list[dict]) -> str:
    return "\n".join(m.get("content") or "" for m in messages if m.get("role") != "system")


class DecontaminationFilter(Filter):
    """Drops pairs whose prompt shares at least `max_overlap_ratio` of its n-grams with an eval set."""

    name = "decontamination"

    def __init__(self, config: DecontaminationFilterConfig):
        self.config = config
        self.eval_ngrams: set[int] = set()
        for path in config.eval_sets:
            for _, row in iter_jsonl(path):
                messages = row.get("messages") or row.get("prompt") or []
                if isinstance(messages, list):
                    self.eval_ngrams |= _ngrams(
                        _prompt_text([m for m in messages if isinstance(m, dict)]), config.ngram_size
                    )

    def judge(self, item: PairItem) -> list[str]:
        """`decontamination.eval_overlap` when the prompt overlaps the eval sets too much."""
        if not self.eval_ngrams:
            return []
        grams = _ngrams(_prompt_text(item.row["prompt"]), self.config.ngram_size)
        if not grams:
            return []
        ratio = len(grams & self.eval_ngrams) / len(grams)
        if ratio >= self.config.max_overlap_ratio:
            item.details["eval_overlap"] = round(ratio, 3)
            return ["decontamination.eval_overlap"]
        return []
