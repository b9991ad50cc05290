"""The shape every filter shares: look at one pair, answer with the reasons to drop it (none = keep)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from prefkit.formats import FORMATS, ActionSpec
from prefkit.scoring import Scorer, TurnScore, previous_assistant


@dataclass(slots=True)
class PairItem:
    """A pair under review: the row as read, its format and action spec, and lazily computed turn scores."""

    row: dict
    format: str | None
    spec: ActionSpec
    scorer: Scorer
    reasons: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    _scores: dict[str, TurnScore | None] = field(default_factory=dict)
    _previous: dict | None | bool = False  # the prompt's last assistant turn (False: not looked up yet)
    summary: dict[str, dict] | None = None  # per-side scores for the record, once the filters are done

    @property
    def scorable(self) -> bool:
        """Whether the pair names a known format and has an assistant message to score on each side."""
        return self.format in FORMATS

    def score(self, side: str) -> TurnScore | None:
        """The score of the last message of `chosen` or `rejected` (computed once)."""
        if side not in self._scores:
            messages = self.row.get(side) or []
            if not self.scorable or not messages:
                self._scores[side] = None
            else:
                if self._previous is False:
                    self._previous = previous_assistant(self.row.get("prompt") or [])
                self._scores[side] = self.scorer.score(self.format, messages[-1], self.spec, self._previous)
        return self._scores[side]

    def summarise(self) -> None:
        """Keep what the record shows of the turn scores and let the scores go: a large file's pairs would
        otherwise all hold theirs until the end of the run (memory, and memory that is no longer in cache)."""
        chosen, rejected = self.score("chosen"), self.score("rejected")
        if chosen and rejected:
            # Rejected turns are expected to be sloppy; measuring their repetition for the record alone would
            # be the dearest part of the filter, so it is left out of their summary.
            self.summary = {"chosen": chosen.summary(), "rejected": rejected.summary(repetition=False)}
        self._scores.clear()


class Filter:
    """Base class: `judge` returns the reason codes (`"<name>.<rule>"`) for dropping a pair."""

    name: ClassVar[str] = "filter"

    def judge(self, item: PairItem) -> list[str]:
        """Reasons to drop `item`; an empty list keeps it."""
        raise NotImplementedError
