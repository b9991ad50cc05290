"""The likelihood displacement guard's arithmetic and the generation check's verdict on a turn."""

import pytest

from prefkit.train.displacement import change_per_token, collapsed, drop_checkpoints_after


def test_the_change_is_per_token_against_the_reference():
    # TRL logs beta * (policy - reference) summed over the completion: -2.0 at beta 0.1 over 20 tokens is -1 nat.
    logs = {"eval_rewards/chosen": -2.0, "eval_rewards/rejected": -6.0, "eval_loss": 0.1}
    assert change_per_token(logs, "eval_", 0.1, (20.0, 30.0)) == pytest.approx((-1.0, -2.0))
    assert change_per_token({"loss": 0.3}, "", 0.1, (20.0, 30.0)) is None


@pytest.mark.parametrize(
    "text,bad",
    [
        ("THOUGHT: the mug is in the cabinet.\nACTION: go to cabinet 1", False),
        ("go to diningtable 1", False),
        ("   ", True),
        ("\x13\x13\x13\x13\x13\x13", True),
        ("\ufffd\ufffd ab \ufffd\ufffd", True),
        ("日本語の文章です。", False),
    ],
)
def test_a_collapsed_turn_is_empty_or_not_text(text, bad):
    assert collapsed(text) is bad


def test_only_checkpoints_after_the_last_good_step_are_dropped(tmp_path):
    for step in (5, 10, 20, 30):
        (tmp_path / f"checkpoint-{step}").mkdir()
    assert drop_checkpoints_after(tmp_path, 20) == ["checkpoint-5", "checkpoint-10", "checkpoint-20"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-10", "checkpoint-20", "checkpoint-5"]
