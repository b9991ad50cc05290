"""A teacher's answer is checked before it is cached or used: text content, text tool calls, UTF-8, bounded."""

import pytest

from prefkit.teacher.answers import MAX_ANSWER_CHARS, parse_answers


def response(message: dict) -> dict:
    return {"choices": [{"index": 0, "message": message}], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}


@pytest.mark.parametrize(
    "message, problem",
    [
        ({"content": 42}, "content is a int, not text"),
        ({"content": ["a", "list"]}, "content is a list, not text"),
        ({"content": {"a": "dict"}}, "content is a dict, not text"),
        ({"content": "lone \ud800 surrogate"}, "not UTF-8 text"),
        ({"content": "x" * (MAX_ANSWER_CHARS + 1)}, "longer than"),
        ({"content": None}, "empty message"),
        ({"content": None, "tool_calls": [["not", "a", "call"]]}, "a tool call is not"),
        ({"content": None, "tool_calls": [{"function": {"name": "f", "arguments": {"a": [[[1]]]}}}]},
         "arguments is a dict"),
        ({"content": None, "tool_calls": [{"function": {"arguments": "{}"}}]}, "has no name"),
    ],
)  # fmt: skip
def test_an_answer_that_is_not_text_is_malformed(message, problem):
    with pytest.raises(ValueError, match=problem):
        parse_answers(response(message), 1)


def test_a_good_answer_keeps_its_text_and_tool_calls():
    call = {"id": "c1", "type": "function", "function": {"name": "take_action", "arguments": '{"a": 1}'}}
    (answer,) = parse_answers(response({"content": "ok", "tool_calls": [call]}), 1)
    assert answer.message == {"role": "assistant", "content": "ok", "tool_calls": [call]}
    assert (answer.prompt_tokens, answer.completion_tokens) == (3, 2)


def test_a_malformed_answer_is_retried_and_never_cached(tmp_path):
    import asyncio

    from prefkit.teacher.cache import ResponseCache
    from prefkit.teacher.client import Teacher, TeacherConfig
    from prefkit.testing.standin import Behaviour, StandinServer

    answers = iter(["lone \ud800 surrogate", "fine"])
    with StandinServer(Behaviour(responder=lambda body, index: next(answers))) as server:
        config = TeacherConfig(base_url=server.url, model="teacher-model", backoff_initial=0.01)
        cache = ResponseCache(tmp_path / "cache.sqlite")

        async def ask():
            async with Teacher(config, cache) as teacher:
                return await teacher.complete([{"role": "user", "content": "hi"}])

        try:
            assert asyncio.run(ask())[0].message["content"] == "fine"
        finally:
            cache.close()
    assert server.stats.requests >= 2
