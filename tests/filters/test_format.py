"""Format filter: invalid chosen is dropped with its violation codes; low-contrast pairs are flagged."""

from tests.filters.helpers import SQL_TURN, pair, reasons_of


def test_invalid_chosen_is_dropped_with_violation_codes():
    assert reasons_of([pair(chosen="The answer is Ann.")])[0] == ["format.missing_action"]


def test_valid_rejected_that_is_no_worse_is_low_contrast():
    other = SQL_TURN.replace("id = 3", "id >= 3").replace("matching rows", "rows we want")
    assert reasons_of([pair(rejected=other)])[0] == ["format.low_contrast"]
    assert reasons_of([pair(rejected=other)], format={"drop_low_contrast": False})[0] == []


def test_valid_but_chattier_rejected_is_contrast_enough():
    chatty = "Certainly! " + SQL_TURN
    assert reasons_of([pair(rejected=chatty)])[0] == []


def test_pair_without_format_is_dropped():
    row = pair()
    del row["meta"]["format"]
    assert reasons_of([row])[0] == ["format.no_format"]
    assert reasons_of([pair(fmt="cobol")])[0] == ["format.unknown_format"]


def test_action_spec_from_recipe_and_task():
    restricted = {"formats": {"react": {"actions": ["Answer"]}}}
    assert "format.unknown_action" in reasons_of([pair()], **restricted)[0]
    row = pair(action_spec={"actions": ["Operation", "Answer"]})
    assert reasons_of([row], **restricted)[0] == []
