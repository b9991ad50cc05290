"""Turning reviewers' answers into pairs: map A/B back through the order each pair was shown in, take
the majority of several annotators, and measure how much they agree (Fleiss' kappa; Cohen's for two).
Used by `prefkit review tui` today and by the Argilla `pull` once it exists."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

LABELS = ("A better", "B better", "tie", "both bad")


@dataclass(frozen=True)
class Answer:
    """One reviewer's answer for one pair."""

    annotator: str
    label: str
    correction: str | None = None
    comment: str | None = None


def majority(answers: list[Answer]) -> str | None:
    """The label most annotators gave, or None when the top two are level (no decision)."""
    counts = Counter(answer.label for answer in answers).most_common()
    if not counts or (len(counts) > 1 and counts[0][1] == counts[1][1]):
        return None
    return counts[0][0]


def apply_decision(row: dict, order: str, answers: list[Answer]) -> tuple[dict | None, dict]:
    """(the pair as the reviewers decided, or None when dropped; the decision record for meta.review).

    "A better"/"B better" map back through `order` ('chosen-first' or 'rejected-first') and may swap the
    sides; "both bad" keeps the pair only when a reviewer wrote a correction, which becomes chosen against
    the originally chosen turn (the near miss it fixes); ties and undecided pairs are dropped.
    """
    label = majority(answers)
    record = {
        "label": label,
        "order": order,
        "answers": [answer.__dict__ for answer in answers],
        "agreement": (Counter(a.label for a in answers).most_common(1)[0][1] / len(answers)) if answers else None,
    }
    if label in ("A better", "B better"):
        winner_first = label == "A better"
        swapped = winner_first != (order == "chosen-first")
        record["swapped"] = swapped
        out = dict(row, meta=dict(row.get("meta") or {}))
        if swapped:
            out["chosen"], out["rejected"] = row["rejected"], row["chosen"]
        return out, record
    if label == "both bad":
        corrections = [a.correction for a in answers if a.label == "both bad" and a.correction and a.correction.strip()]
        if corrections:
            record["corrected"] = True
            out = dict(row, meta=dict(row.get("meta") or {}))
            out["chosen"] = [{"role": "assistant", "content": corrections[0].strip()}]
            out["rejected"] = row["chosen"]
            return out, record
    return None, record


def fleiss_kappa(items: list[list[str]], labels: tuple[str, ...] = LABELS) -> float | None:
    """Fleiss' kappa over items each rated by the same number (>= 2) of annotators; None if undefined."""
    items = [ratings for ratings in items if len(ratings) >= 2]
    if not items or len({len(ratings) for ratings in items}) != 1:
        return None
    n = len(items[0])
    counts = [[ratings.count(label) for label in labels] for ratings in items]
    p_items = [(sum(c * c for c in row) - n) / (n * (n - 1)) for row in counts]
    p_bar = sum(p_items) / len(items)
    totals = [sum(row[j] for row in counts) / (len(items) * n) for j in range(len(labels))]
    p_expected = sum(p * p for p in totals)
    if p_expected == 1:
        return None
    return (p_bar - p_expected) / (1 - p_expected)


def cohen_kappa(first: list[str], second: list[str]) -> float | None:
    """Cohen's kappa of two annotators over the same items (scikit-learn); None if undefined."""
    if len(first) != len(second) or len(first) < 2:
        return None
    from sklearn.metrics import cohen_kappa_score

    value = cohen_kappa_score(first, second, labels=list(LABELS))
    return None if value != value else float(value)  # NaN when both annotators used one label only
