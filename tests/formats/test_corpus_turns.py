"""Every real turn in ../shared/corpus parses as valid in its format; every corruption of it does not."""

import random

import pytest

from prefkit.corruptions import KINDS, corrupt
from prefkit.formats import ActionSpec, parse_turn
from tests.conftest import tasks_of

FORMATS = ["react", "alfworld", "tool-call"]


@pytest.mark.parametrize("format_name", FORMATS)
def test_real_corpus_turns_are_valid(corpus_tasks, format_name):
    tasks = tasks_of(corpus_tasks, format_name)
    assert len(tasks) > 10
    for task in tasks:
        spec = ActionSpec.model_validate(task["meta"].get("action_spec") or {})
        parsed = parse_turn(format_name, task["meta"]["reference"], spec)
        assert parsed.valid, (task["id"], task["meta"]["reference"], parsed.codes)


STRUCTURAL = ["drop_action", "malformed_action", "two_actions", "format_break"]


@pytest.mark.parametrize("format_name", FORMATS)
@pytest.mark.parametrize("kind", STRUCTURAL)
def test_structural_corruptions_of_real_turns_are_invalid(corpus_tasks, format_name, kind):
    rng = random.Random(7)
    checked = 0
    for task in tasks_of(corpus_tasks, format_name):
        spec = ActionSpec.model_validate(task["meta"].get("action_spec") or {})
        bad = corrupt(task["meta"]["reference"], format_name, kind, rng, spec)
        if bad is None:
            continue
        checked += 1
        assert not parse_turn(format_name, bad, spec).valid, (kind, bad)
    if kind != "format_break" or format_name != "tool-call":
        assert checked > 0


def test_every_corruption_kind_is_known():
    with pytest.raises(ValueError):
        corrupt({"role": "assistant", "content": "x"}, "react", "nonsense")
    assert set(KINDS) >= set(STRUCTURAL)
