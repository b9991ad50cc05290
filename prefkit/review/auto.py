"""The `auto` review: accept the rule-based preference (no human), marked as such in `meta.review`."""

from __future__ import annotations

from prefkit.formats import FORMATS, ActionSpec
from prefkit.records import add_meta
from prefkit.scoring import Scorer, VerbosityConfig, previous_assistant
from prefkit.strategies.sample_rank import rule_score


def auto_review(rows: list[dict], verbosity: VerbosityConfig | None = None) -> tuple[list[dict], dict[str, int]]:
    """Keep pairs the rules prefer as given, swap those they prefer the other way, drop ties."""
    scorer = Scorer(verbosity)
    kept, counts = [], {"chosen": 0, "swapped": 0, "tie": 0}
    for row in rows:
        meta = row.get("meta") or {}
        format_name = meta.get("format")
        if format_name not in FORMATS:
            counts["tie"] += 1
            continue
        spec = ActionSpec.model_validate(meta.get("action_spec") or {})
        previous = previous_assistant(row["prompt"])
        chosen = rule_score(scorer.score(format_name, row["chosen"][-1], spec, previous), scorer.config)
        rejected = rule_score(scorer.score(format_name, row["rejected"][-1], spec, previous), scorer.config)
        decision = "chosen" if chosen > rejected else ("swapped" if rejected > chosen else "tie")
        counts[decision] += 1
        if decision == "tie":
            continue
        if decision == "swapped":
            row = {**row, "chosen": row["rejected"], "rejected": row["chosen"]}
        add_meta(row, "review", {"mode": "auto", "decision": decision,
                                 "rule_scores": {"chosen": round(max(chosen, rejected), 3),
                                                 "rejected": round(min(chosen, rejected), 3)}})
        kept.append(row)
    return kept, counts
