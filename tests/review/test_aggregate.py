"""Aggregating reviewers' answers: A/B mapping, swaps, ties, both-bad with correction, majority, kappa."""

import pytest

from prefkit.review.aggregate import (
    Answer,
    apply_decision,
    cohen_kappa,
    fleiss_kappa,
    majority,
)
from tests.filters.helpers import pair

ROW = dict(pair(chosen="Thought: x.\nAction: Operation\n```sql\nSELECT 1;\n```", rejected="Sure!"), id="p1")


def answers(*labels, correction=None):
    return [Answer(f"u{i}", label, correction) for i, label in enumerate(labels)]


@pytest.mark.parametrize(
    "order,label,swapped",
    [
        ("chosen-first", "A better", False),
        ("chosen-first", "B better", True),
        ("rejected-first", "A better", True),
        ("rejected-first", "B better", False),
    ],
)
def test_labels_map_back_through_the_shown_order(order, label, swapped):
    out, record = apply_decision(ROW, order, answers(label))
    assert record["swapped"] is swapped
    assert out["chosen"] == (ROW["rejected"] if swapped else ROW["chosen"])
    assert out["meta"]["format"] == "react"


def test_ties_and_both_bad_without_correction_are_dropped():
    assert apply_decision(ROW, "chosen-first", answers("tie"))[0] is None
    assert apply_decision(ROW, "chosen-first", answers("both bad"))[0] is None


def test_both_bad_with_correction_makes_the_correction_chosen():
    out, record = apply_decision(
        ROW, "rejected-first", answers("both bad", correction="Action: Answer\nFinal Answer: [1]")
    )
    assert out["chosen"] == [{"role": "assistant", "content": "Action: Answer\nFinal Answer: [1]"}]
    assert out["rejected"] == ROW["chosen"] and record["corrected"]


def test_majority_of_annotators_and_undecided_splits():
    assert majority(answers("A better", "A better", "B better")) == "A better"
    assert majority(answers("A better", "B better")) is None
    out, record = apply_decision(ROW, "chosen-first", answers("A better", "B better"))
    assert out is None and record["label"] is None and record["agreement"] == 0.5


def test_kappa():
    perfect = [["A better", "A better"], ["B better", "B better"], ["tie", "tie"]]
    assert fleiss_kappa(perfect) == pytest.approx(1.0)
    assert cohen_kappa(["A better", "B better", "tie"], ["A better", "B better", "tie"]) == pytest.approx(1.0)
    mixed = [["A better", "B better"], ["B better", "A better"], ["A better", "A better"], ["B better", "B better"]]
    assert fleiss_kappa(mixed) == pytest.approx(0.0, abs=1e-9)
    assert fleiss_kappa([["A better"]]) is None
