"""Format filter: chosen must be a valid turn in the task's format; a rejected that is just as good is
flagged as low contrast (the pair teaches nothing about the rules)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from prefkit.filters.base import Filter, PairItem
from prefkit.scoring import VerbosityConfig


class FormatFilterConfig(BaseModel):
    """Settings of the format filter."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Run this filter.")
    drop_low_contrast: bool = Field(
        True, description="Drop pairs whose rejected turn is also valid and no worse than chosen on any rule."
    )


class FormatFilter(Filter):
    """Drops pairs whose chosen turn breaks its format, or whose rejected is no worse than chosen."""

    name = "format"

    def __init__(self, config: FormatFilterConfig, verbosity: VerbosityConfig):
        self.config = config
        self.verbosity = verbosity

    def judge(self, item: PairItem) -> list[str]:
        """Violation codes of chosen, or `format.low_contrast`."""
        if item.format is None:
            return ["format.no_format"]
        if not item.scorable:
            return ["format.unknown_format"]
        chosen, rejected = item.score("chosen"), item.score("rejected")
        if chosen is None or rejected is None:
            return []  # the pair filter reports empty or missing turns
        if not chosen.parsed.valid:
            return sorted(set(chosen.parsed.codes))
        if self.config.drop_low_contrast and rejected.parsed.valid:
            if rejected.no_worse_than(chosen, self.verbosity):
                return ["format.low_contrast"]
        return []
