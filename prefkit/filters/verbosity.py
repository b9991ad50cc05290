"""Verbosity filter: chosen must not chat, ramble, loop or act twice."""

from __future__ import annotations

from pydantic import Field

from prefkit.filters.base import Filter, PairItem
from prefkit.scoring import VerbosityConfig


class VerbosityFilterConfig(VerbosityConfig):
    """Settings of the verbosity filter (the shared verbosity thresholds plus switches)."""

    enabled: bool = Field(True, description="Run this filter.")
    allow_trailing_text: bool = Field(False, description="Accept text after the action (the parser ignores it).")


class VerbosityFilter(Filter):
    """Drops pairs whose chosen turn has filler, an over-long thought, repetition, a loop or two actions."""

    name = "verbosity"

    def __init__(self, config: VerbosityFilterConfig):
        self.config = config

    def judge(self, item: PairItem) -> list[str]:
        """One reason per broken verbosity rule of chosen."""
        score = item.score("chosen")
        if score is None:
            return []
        config, reasons = self.config, []
        if score.filler:
            reasons.append("verbosity.filler_phrase")
        if score.thought_tokens > config.max_thought_tokens:
            reasons.append("verbosity.thought_too_long")
        if score.repeated_sentences > config.max_repeated_sentences:
            reasons.append("verbosity.repeated_sentence")
        if score.repeated_ngram_ratio > config.max_repeated_ngram_ratio:
            reasons.append("verbosity.repeated_ngrams")
        if score.repeats_previous_action:
            reasons.append("verbosity.repeated_action")
        if len(score.parsed.actions) > 1:
            reasons.append("verbosity.multiple_actions")
        if score.parsed.trailing and not config.allow_trailing_text:
            reasons.append("verbosity.trailing_text")
        return reasons
