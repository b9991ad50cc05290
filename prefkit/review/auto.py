"""The `auto` review: accept the rule-based preference (no human), marked as such in `meta.review`.

`RuleJudge` is that preference; the Argilla queue shows it to reviewers as a suggestion."""

from __future__ import annotations

from prefkit.formats import FORMATS, ActionSpec
from prefkit.records import add_meta
from prefkit.scoring import Scorer, TurnScore, VerbosityConfig, previous_assistant
from prefkit.strategies.sample_rank import rule_score


class RuleJudge:
    """Scores the two sides of a pair with the same rules as `prefkit filter`."""

    def __init__(self, verbosity: VerbosityConfig | None = None):
        self.scorer = Scorer(verbosity)

    def score(self, row: dict, side: str) -> TurnScore | None:
        """The last turn of `side` scored in the pair's format; None when the format is unknown."""
        meta = row.get("meta") or {}
        format_name = meta.get("format")
        if format_name not in FORMATS:
            return None
        spec = ActionSpec.of(meta.get("action_spec"))
        return self.scorer.score(format_name, row[side][-1], spec, previous_assistant(row["prompt"]))

    def value(self, score: TurnScore) -> float:
        """Higher is better (see `sample_rank.rule_score`)."""
        return rule_score(score, self.scorer.config)


def auto_review(
    rows: list[dict], verbosity: VerbosityConfig | None = None
) -> tuple[list[dict], list[dict], dict[str, int]]:
    """(kept, dropped, counts): pairs the rules prefer as given are kept, those they prefer the other way
    swapped, ties dropped (each with its decision under `meta.review`)."""
    judge = RuleJudge(verbosity)
    kept, dropped, counts = [], [], {"chosen": 0, "swapped": 0, "tie": 0}
    for row in rows:
        chosen_score, rejected_score = judge.score(row, "chosen"), judge.score(row, "rejected")
        if chosen_score is None or rejected_score is None:
            counts["tie"] += 1
            add_meta(row, "review", {"mode": "auto", "decision": "tie", "why": "unknown format"})
            dropped.append(row)
            continue
        chosen, rejected = judge.value(chosen_score), judge.value(rejected_score)
        decision = "chosen" if chosen > rejected else ("swapped" if rejected > chosen else "tie")
        counts[decision] += 1
        if decision == "tie":
            add_meta(row, "review", {"mode": "auto", "decision": "tie", "rule_scores": {"both": round(chosen, 3)}})
            dropped.append(row)
            continue
        if decision == "swapped":
            row = {**row, "chosen": row["rejected"], "rejected": row["chosen"]}
        add_meta(
            row,
            "review",
            {
                "mode": "auto",
                "decision": decision,
                "rule_scores": {"chosen": round(max(chosen, rejected), 3), "rejected": round(min(chosen, rejected), 3)},
            },
        )
        kept.append(row)
    return kept, dropped, counts
