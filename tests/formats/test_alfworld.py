"""The alfworld format: AgentBench THOUGHT/ACTION and ReAct think/command dialects."""

import pytest

from prefkit.formats import ActionSpec, parse_turn


def codes(text, **spec):
    return parse_turn("alfworld", {"role": "assistant", "content": text}, ActionSpec(**spec)).codes


@pytest.mark.parametrize(
    "text",
    [
        "THOUGHT: the apple may be in the fridge.\nACTION: go to fridge 1",
        "think: First I need to find an apple.",
        "go to countertop 1",
        "put mug 1 in/on coffeemachine 1",
        "heat egg 2 with microwave 1",
    ],
)
def test_valid_turns(text):
    assert codes(text) == []


@pytest.mark.parametrize(
    "text,code",
    [
        ("THOUGHT: look around.\nAction: go to fridge 1", "format.action_label_case"),
        ("THOUGHT: I am thinking.", "format.missing_action"),
        ("THOUGHT: x\nACTION: go to fridge 1\nACTION: open fridge 1", "discipline.multiple_actions"),
        ("THOUGHT: x\nACTION: fly to the moon", "discipline.unknown_command"),
        ("THOUGHT: x\nACTION:", "format.empty_action"),
        ("go to fridge 1\nopen fridge 1", "discipline.multiple_actions"),
        ("Sure, I will go to the fridge.", "format.unknown_command"),
        ("think:", "discipline.empty_thought"),
        ("> take apple 1 from countertop 1", "format.unknown_command"),
        ("   ", "format.empty"),
    ],
)
def test_broken_turns_name_their_violation(text, code):
    assert code in codes(text)


def test_admissible_commands_from_the_task():
    assert codes("go to fridge 1", admissible=("go to fridge 1", "look")) == []
    assert "format.unknown_command" in codes("go to fridge 2", admissible=("go to fridge 1", "look"))


def test_command_grammar_from_the_recipe():
    assert codes("jump", commands=(r"jump|look",)) == []
    assert "format.unknown_command" in codes("go to fridge 1", commands=(r"jump|look",))
