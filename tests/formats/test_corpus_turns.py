"""Every real turn in ../shared/corpus parses as valid in its format; every corruption of it does not."""

import json
import random

import pytest

from prefkit.corruptions import KINDS, corrupt
from prefkit.formats import ActionSpec, parse_turn
from tests.conftest import CORPUS, tasks_of

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
def test_structural_corruptions_of_real_turns_are_rejected_by_the_benchmarks_rule(corpus_tasks, format_name, kind):
    """drop_action, malformed_action and format_break make turns the benchmark's parser rejects; two_actions
    makes one it may still accept (taking the first action), which discipline rejects."""
    rng = random.Random(7)
    checked = 0
    for task in tasks_of(corpus_tasks, format_name):
        spec = ActionSpec.model_validate(task["meta"].get("action_spec") or {})
        bad = corrupt(task["meta"]["reference"], format_name, kind, rng, spec)
        if bad is None:
            continue
        checked += 1
        parsed = parse_turn(format_name, bad, spec)
        assert not parsed.valid, (kind, bad)
        if kind == "two_actions":
            assert any(code.endswith(".multiple_actions") for code in parsed.codes), (bad, parsed.codes)
        else:
            assert not parsed.accepted, (kind, bad, parsed.codes)
    if kind != "format_break" or format_name != "tool-call":
        assert checked > 0


def _agentbench_v02_alfworld_turns():
    """The agent turns of AgentBench v0.2's ALFWorld prompts: each file is {task type: [observation, turn, ...]}."""
    for name in ("new", "pure", "react"):
        data = json.loads((CORPUS / f"agentbench/v0.2/alfworld_multiturn_{name}.json").read_text())
        for episode in data.values():
            yield from episode[1::2]


def test_agentbench_v02_alfworld_turns_are_accepted_as_its_parser_reads_them():
    turns = list(_agentbench_v02_alfworld_turns())
    assert len(turns) == 135
    undisciplined = []
    for text in turns:
        parsed = parse_turn("alfworld", {"role": "assistant", "content": text}, ActionSpec(style="agentbench"))
        assert parsed.accepted and parsed.executed.argument == text.split("ACTION:")[1].strip().lower(), text
        if not parsed.disciplined:
            undisciplined.append((parsed.executed.argument, parsed.codes))
    # each episode ends "ACTION: Task succeeded." (no ALFWorld command: AgentBench sends its nearest admissible one)
    assert undisciplined == [("task succeeded.", ["discipline.unknown_command"])] * 18


def _codeact_turns():
    """The assistant turns of CodeAct's (MINT's) in-context examples, as a model generates them: up to MINT's
    first stop word."""
    from prefkit.formats.codeact import STOP_WORDS

    for path in sorted((CORPUS / "code-act/in_context_examples").rglob("with_tool.txt")):
        for block in path.read_text().split("\nAssistant:\n")[1:]:
            cut = min((i for i in (block.find(word) for word in STOP_WORDS) if i >= 0), default=len(block))
            yield path, block[:cut].strip()


def test_codeact_examples_are_accepted_and_disciplined():
    turns = list(_codeact_turns())
    assert len(turns) > 20
    for path, text in turns:
        parsed = parse_turn("codeact", {"role": "assistant", "content": text})
        assert parsed.valid, (path, text, parsed.codes)
        assert parsed.executed.name in ("execute", "solution")
    answers = [text for _, text in turns if "<solution>" in text]
    assert answers and len(answers) < len(turns)


def test_every_corruption_kind_is_known():
    with pytest.raises(ValueError):
        corrupt({"role": "assistant", "content": "x"}, "react", "nonsense")
    assert set(KINDS) >= set(STRUCTURAL)


def _first_allowed(arguments: dict) -> dict:
    """BFCL's possible answer -> one call's arguments: each parameter's first allowed value ("" means it may be
    left out), nested dicts (and lists of them) read the same way."""
    out = {}
    for name, allowed in arguments.items():
        if not allowed or allowed[0] == "":
            continue
        value = allowed[0]
        if isinstance(value, dict):
            value = _first_allowed(value)
        elif isinstance(value, list):
            value = [_first_allowed(item) if isinstance(item, dict) else item for item in value]
        out[name] = value
    return out


# Ground truths that break their own function's schema (BFCL's checker refuses them too): a required parameter
# left out, a list of strings declared as integers, a string where an array is declared, an undeclared key; and
# one whose allowed value is itself a list (an enum array), which the first-value reading above cannot express.
BFCL_GROUND_TRUTH_QUIRKS = {
    "simple_python_200", "parallel_multiple_21", "parallel_multiple_26", "parallel_multiple_94",
    "live_simple_71-35-0", "live_simple_106-63-0", "live_simple_112-68-0",
}  # fmt: skip


@pytest.mark.parametrize("category", ["simple_python", "multiple", "parallel", "parallel_multiple", "live_simple"])
def test_bfcl_ground_truth_calls_are_accepted_against_their_schemas(category):
    """BFCL's own questions and possible answers (corpus/gorilla): the right call, made as an OpenAI tool call,
    is accepted under the question's functions in BFCL's schema dialect."""
    questions = {}
    for line in (CORPUS / f"gorilla/BFCL_v4_{category}.json").read_text().splitlines():
        row = json.loads(line)
        questions[row["id"]] = row
    refused, checked = set(), 0
    for line in (CORPUS / f"gorilla/possible_answer/BFCL_v4_{category}.json").read_text().splitlines():
        answer = json.loads(line)
        calls = [
            {
                "id": str(i),
                "type": "function",
                "function": {"name": name, "arguments": json.dumps(_first_allowed(args))},
            }
            for i, truth in enumerate(answer["ground_truth"])
            for name, args in truth.items()
        ]
        tools = tuple({"type": "function", "function": function} for function in questions[answer["id"]]["function"])
        spec = ActionSpec(tools=tools, parallel_calls=category.startswith("parallel"))
        parsed = parse_turn("tool-call", {"role": "assistant", "content": "", "tool_calls": calls}, spec)
        checked += 1
        if not parsed.valid:
            refused.add(answer["id"])
        assert parsed.executed is None or parsed.executed.name == calls[0]["function"]["name"]
    assert checked >= 200
    assert refused == {quirk for quirk in BFCL_GROUND_TRUTH_QUIRKS if quirk.rsplit("_", 1)[0] == category}
