"""Verbosity rules on chosen: filler, thought budget, repetition, loops, two actions, trailing text."""

from tests.filters.helpers import CHATTY, SQL_TURN, pair, reasons_of

ACTION = "\nAction: Operation\n```sql\nSELECT 1;\n```"


def only(text, **config):
    return reasons_of([pair(chosen=text)], **config)[0]


def test_clean_turn_is_kept():
    assert only(SQL_TURN) == []


def test_filler_phrase():
    assert "verbosity.filler_phrase" in only("Certainly! I will query the table." + ACTION)
    assert "verbosity.filler_phrase" in only("Great question. I will query." + ACTION)


def test_user_added_filler_phrase():
    text = "Roger that, querying now." + ACTION
    assert only(text) == []
    assert "verbosity.filler_phrase" in only(text, verbosity={"extra_filler_phrases": ["roger that"]})


def test_thought_over_budget():
    text = "Thought: " + " ".join(f"word{i}" for i in range(40)) + ACTION
    assert "verbosity.thought_too_long" in only(text, verbosity={"max_thought_tokens": 20})
    assert only(text, verbosity={"max_thought_tokens": 60}) == []


def test_repeated_sentence():
    text = "Thought: I need to check the table now. I need to check the table now." + ACTION
    assert "verbosity.repeated_sentence" in only(text)


def test_repeated_ngrams():
    text = "Thought: " + "check the id then " * 8 + ACTION
    assert "verbosity.repeated_ngrams" in only(text)


def test_same_action_as_previous_turn_is_a_loop():
    prompt = [
        {"role": "user", "content": "Who has id 3?"},
        {"role": "assistant", "content": SQL_TURN},
        {"role": "user", "content": "[('Ann',)]"},
    ]
    assert "verbosity.repeated_action" in reasons_of([pair(prompt=prompt)])[0]
    other = SQL_TURN.replace("id = 3", "id = 4")
    assert "verbosity.repeated_action" not in reasons_of([pair(chosen=other, prompt=prompt)])[0]


def test_two_actions_in_one_turn():
    assert "verbosity.multiple_actions" in only(SQL_TURN + '\nAction: Answer\nFinal Answer: ["Ann"]')


def test_text_after_the_action():
    assert "verbosity.trailing_text" in only(SQL_TURN + "\nLet me know what you get back.")
    assert only(SQL_TURN + "\nLet me know.", verbosity={"allow_trailing_text": True}) == []


def test_rejected_may_be_verbose():
    assert reasons_of([pair(rejected=CHATTY * 3)])[0] == []


def test_pleasantry_opener_counts_as_filler_whatever_the_punctuation():
    assert "verbosity.filler_phrase" in only("Sure. I will query the table." + ACTION)
    assert "verbosity.filler_phrase" in only("Certainly, querying." + ACTION)
    assert only("Surely the id column matters." + ACTION) == []
    assert only("Sure. I will query the table." + ACTION, verbosity={"flag_openers": False}) == []
