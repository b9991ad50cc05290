"""Pair filter: roles, empty turns, identical and near-identical sides, concision."""

from tests.filters.helpers import SQL_TURN, pair, reasons_of


def test_identical_sides():
    assert "pair.identical" in reasons_of([pair(rejected=SQL_TURN)])[0]


LONG = (
    "Thought: The question asks for the staff member whose id is three, so I select the name column "
    "from the staff table and filter on the id column.\nAction: Operation\n```sql\n"
    "SELECT name FROM staff WHERE id = 3;\n```"
)


def test_near_identical_sides_the_rules_cannot_tell_apart():
    assert "pair.near_identical" in reasons_of([pair(chosen=LONG, rejected=LONG.replace("so I", "so  we"))])[0]
    assert "pair.near_identical" in reasons_of([pair(rejected=SQL_TURN.replace("I need ", "I need  "))])[0]


def test_small_edit_that_breaks_a_rule_is_a_useful_pair():
    rejected = SQL_TURN.replace("```sql", "```SQL")
    assert reasons_of([pair(rejected=rejected)])[0] == []


def test_empty_turn():
    assert reasons_of([pair(rejected="   ")])[0] == ["pair.empty_turn"]


def test_wrong_roles():
    row = pair()
    row["chosen"][0]["role"] = "user"
    assert reasons_of([row])[0][0] == "pair.wrong_roles"
    row = pair(prompt=[{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}])
    assert reasons_of([row])[0][0] == "pair.wrong_roles"


def test_chosen_too_long_only_when_recipe_asks_for_concision():
    long_chosen = "Thought: " + "detail " * 60 + "\nAction: Operation\n```sql\nSELECT 1;\n```"
    short_rejected = "Sure! SELECT 1"
    assert "pair.chosen_too_long" not in reasons_of([pair(chosen=long_chosen, rejected=short_rejected)])[0]
    concise = {"pair": {"concise": True, "max_length_ratio": 1.5}, "verbosity": {"max_thought_tokens": 500}}
    assert "pair.chosen_too_long" in reasons_of([pair(chosen=long_chosen, rejected=short_rejected)], **concise)[0]
