"""The codeact format: <thought> + one <execute>, or an answer."""

import pytest

from prefkit.formats import parse_turn


def parse(text):
    return parse_turn("codeact", {"role": "assistant", "content": text})


def test_thought_then_execute_is_valid():
    parsed = parse("<thought>Sum the list.</thought>\n<execute>print(sum([1, 2]))</execute>")
    assert parsed.valid and parsed.thought == "Sum the list." and parsed.action.argument == "print(sum([1, 2]))"


def test_solution_is_the_answer_and_plain_text_is_not():
    assert parse("The answer is <solution>3</solution>").final_answer == "3"
    assert not parse("The answer is 3.").accepted  # MINT: "No code found."


@pytest.mark.parametrize(
    "text,code",
    [
        ("<execute>print(1)", "format.unclosed_tag"),
        ("<execute>a=1</execute><execute>print(a)</execute>", "discipline.multiple_actions"),
        ("<execute>print(1)</execute><solution>1</solution>", "discipline.multiple_actions"),
        ("<execute>  </execute>", "format.empty_action"),
        ("Run this:\n```python\nprint(1)\n```", "format.code_outside_execute"),
        ("", "format.empty"),
    ],
)
def test_broken_turns_name_their_violation(text, code):
    assert code in parse(text).codes
