"""Pair filter: the structure of the pair itself — roles, empty turns, identical sides, concision."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from prefkit.filters.base import Filter, PairItem
from prefkit.records import turn_text


class PairFilterConfig(BaseModel):
    """Settings of the pair filter."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Run this filter.")
    max_similarity: float = Field(
        0.8,
        ge=0,
        le=1,
        description="Word-bigram Jaccard similarity of chosen and rejected above which they are near-identical; "
        "such pairs are dropped only when the rules cannot tell the two sides apart.",
    )
    concise: bool = Field(
        False, description="The recipe asks for concision: chosen may not be much longer than rejected."
    )
    max_length_ratio: float = Field(
        1.5, gt=0, description="With `concise`, the most chosen may be longer than rejected (tokens)."
    )


class PairFilter(Filter):
    """Drops pairs with wrong roles, empty turns, indistinguishable sides or (optionally) a long chosen."""

    name = "pair"

    def __init__(self, config: PairFilterConfig):
        self.config = config

    def judge(self, item: PairItem) -> list[str]:
        """Structural reasons to drop the pair."""
        row = item.row
        prompt, chosen, rejected = row["prompt"], row["chosen"], row["rejected"]
        if (
            len(chosen) != 1
            or len(rejected) != 1
            or chosen[0]["role"] != "assistant"
            or rejected[0]["role"] != "assistant"
            or prompt[-1]["role"] == "assistant"
            or any(m["role"] == "system" for m in prompt[1:])
        ):
            return ["pair.wrong_roles"]
        chosen_text, rejected_text = turn_text(chosen).strip(), turn_text(rejected).strip()
        if not chosen_text or not rejected_text:
            return ["pair.empty_turn"]
        if chosen_text == rejected_text:
            return ["pair.identical"]
        reasons = []
        # Sides whose format violations differ in number break different rules: no need to compare texts.
        if (
            not _formats_differ(item)
            and _similarity(chosen_text.split(), rejected_text.split()) >= self.config.max_similarity
            and not _rules_differ(item)
        ):
            reasons.append("pair.near_identical")
        if self.config.concise and len(chosen_text.split()) > self.config.max_length_ratio * len(rejected_text.split()):
            reasons.append("pair.chosen_too_long")
        return reasons


def _similarity(a: list[str], b: list[str]) -> float:
    if min(len(a), len(b)) < 0.5 * max(len(a), len(b)):
        # Bigram sets this different in size cannot be near-identical at any useful threshold: skip the sets.
        return min(len(a), len(b)) / max(len(a), len(b))
    grams_a, grams_b = set(zip(a, a[1:])) or set(a), set(zip(b, b[1:])) or set(b)
    union = grams_a | grams_b
    return len(grams_a & grams_b) / len(union) if union else 1.0


def _formats_differ(item: PairItem) -> bool:
    """The cheap part of `_rules_differ`: the parse alone tells the sides apart."""
    chosen, rejected = item.score("chosen"), item.score("rejected")
    if chosen is None or rejected is None:
        return False
    return len(chosen.parsed.violations) != len(rejected.parsed.violations)


def _rules_differ(item: PairItem) -> bool:
    """A tiny edit that makes one side break a rule (e.g. `ACTION:` vs `Action:`) is a useful pair."""
    chosen, rejected = item.score("chosen"), item.score("rejected")
    if chosen is None or rejected is None:
        return False
    return not chosen.same_badness(rejected, item.scorer.config)
