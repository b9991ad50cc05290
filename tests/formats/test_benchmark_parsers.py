"""Each style of each format answers as its benchmark's own parser does: accepted or not, what it would execute,
and, separately, whether the turn is disciplined.

Every row is a case read off the benchmark's parsing code (the file and commit are above each table), including
turns the benchmark accepts that look wrong and turns it rejects that look right. A row is
(turn, accepted, executed action name and argument or None, codes that must be present).
"""

import json

import pytest

from prefkit.formats import ActionSpec, parse_turn


def check(format_name, content, accepted, executed, codes, spec=None, message=None):
    parsed = parse_turn(format_name, message or {"role": "assistant", "content": content}, spec or ActionSpec())
    assert parsed.accepted is accepted, (content, parsed.codes)
    for code in codes:
        assert code in parsed.codes, (content, parsed.codes)
    if accepted:
        assert parsed.executed is not None
        assert (parsed.executed.name, parsed.executed.argument) == executed, (content, parsed.executed)
        # an accepted row that names no discipline code is a clean turn; one that names some is not disciplined
        assert parsed.disciplined is not any(code.startswith("discipline.") for code in codes), parsed.codes
        assert parsed.valid is not codes, parsed.codes
    return parsed


# THUDM/AgentBench v0.2 @ 41e6807349f741e06428fae3e9e4d334e7002362, src/server/tasks/dbbench/__init__.py:
# re.search(r"Action: (.*?)\n"), == "Operation", re.search(r"```sql\n([\s\S]*?)\n```") on the whole turn,
# .strip().replace("\n", " "); otherwise re.search(r"\nFinal Answer:(.*)") and `if answer:`.
SQL = "```sql\nSELECT * FROM t;\n```"
DBBENCH = [
    ("Thought: look.\nAction: Operation\n" + SQL, True, ("Operation", "SELECT * FROM t;"), []),
    ("Action: Operation\n```sql\nSELECT a\nFROM t;\n```", True, ("Operation", "SELECT a FROM t;"), []),
    ('Thought: done.\nAction: Answer\nFinal Answer: ["x", 2]', True, ("Answer", ' ["x", 2]'), []),
    # accepted, looks wrong: the label inside a line, a second block, a second action, a non-list answer
    ("Sure. Action: Operation\n" + SQL, True, ("Operation", "SELECT * FROM t;"), ["discipline.action_not_on_own_line"]),
    (
        "Action: Operation\n" + SQL + "\n```sql\nDROP TABLE t;\n```",
        True,
        ("Operation", "SELECT * FROM t;"),
        ["discipline.multiple_actions"],
    ),
    (
        "Action: Operation\n" + SQL + "\nAction: Answer\nFinal Answer: [1]",
        True,
        ("Operation", "SELECT * FROM t;"),
        ["discipline.multiple_actions"],
    ),
    ("Action: Answer\nFinal Answer: 7", True, ("Answer", " 7"), ["discipline.final_answer_not_list"]),
    ("Action: Finish\nFinal Answer: [7]", True, ("Finish", " [7]"), ["discipline.answer_word"]),
    ("Action: Done\nFinal Answer: [7]", True, ("Done", " [7]"), ["discipline.answer_word"]),
    ("The total is 7.\nFinal Answer: [7]", True, ("Answer", " [7]"), ["discipline.missing_action"]),
    ("Action: Operation\n```sql\n\n```", True, ("Operation", ""), ["discipline.empty_action"]),
    (
        "Action: Operation\n```sql\nSELECT 1; SELECT 2;\n```",
        True,
        ("Operation", "SELECT 1; SELECT 2;"),
        ["discipline.multiple_statements"],
    ),
    (SQL + "\nAction: Operation\n", True, ("Operation", "SELECT * FROM t;"), ["discipline.sql_before_action"]),
    # rejected, looks right: case, spacing, the newline the regex needs, the fence it reads
    ("action: Operation\n" + SQL, False, None, ["format.malformed_action_label"]),
    ("Action:Operation\n" + SQL, False, None, ["format.malformed_action_label"]),
    ("Action: operation\n" + SQL, False, None, ["format.unknown_action"]),
    ("Action: Operation \n" + SQL, False, None, ["format.malformed_action"]),
    ("Action: Operation\n```SQL\nSELECT 1;\n```", False, None, ["format.missing_sql_block"]),
    ("Action: Operation\n```sql SELECT 1; ```", False, None, ["format.missing_sql_block"]),
    ("Action: Answer", False, None, ["format.unterminated_action_line"]),
    ("Final Answer: [7]", False, None, ["format.missing_final_answer"]),
    # `if answer:` tests the match, not its text: an empty answer completes the sample (and grades as "")
    ("Action: Answer\nFinal Answer:", True, ("Answer", ""), ["discipline.final_answer_not_list"]),
    ("Action: Answer\nThe answer is 7", False, None, ["format.missing_final_answer"]),
    ("I think the answer is 7.", False, None, ["format.missing_action"]),
]


@pytest.mark.parametrize("text,accepted,executed,codes", DBBENCH)
def test_dbbench_style(text, accepted, executed, codes):
    check("react", text, accepted, executed, codes, ActionSpec(style="dbbench"))


# ysymyth/ReAct @ 6bdb3a1fd38b8188fc7ba4102969fe483df8fdc9, hotpotqa.ipynb webthink (stop at "\nObservation i:",
# .strip().split(f"\nAction {i}: ") into two, action[0].lower()) and wikienv.py WikiEnv.step
# (startswith("search[") and endswith("]"), else "Invalid action").
NUMBERED = [
    ("Thought 1: find it.\nAction 1: Search[Paris]", True, ("Search", "Paris"), []),
    ("Thought 2: done.\nAction 2: Finish[SUPPORTS]", True, ("Finish", "SUPPORTS"), []),
    ("Action 1: Search[Paris]", True, ("Search", "Paris"), []),  # the act-only prompts
    (
        "Thought 1: x\nAction 1: Search[a]\nObservation 1: made up",
        True,
        ("Search", "a"),
        ["discipline.invented_observation"],
    ),
    ("Thought 1: x\nAction 1: search[a]", True, ("search", "a"), []),
    ("Thought 1: x\nAction 1: Search[a\nb]", True, ("Search", "a\nb"), ["discipline.multiline_argument"]),
    ("Thought 1: x\nAction 2: Search[a]", False, None, ["format.step_mismatch"]),
    ("Thought 1: x\nAction 1: Search(a)", False, None, ["format.malformed_action"]),
    ("Thought 1: x\nAction 1: Search[a] because", False, None, ["format.trailing_text"]),
    ("Thought 1: x\nAction 1: Search[a]\nAction 1: Search[b]", False, None, ["format.multiple_actions"]),
    ("Thought 1: x\nAction 1:Search[a]", False, None, ["format.malformed_action_label"]),
    ("Thought 1: I will search for it.", False, None, ["format.missing_action"]),
    ("Thought 1: x\nAction 1: Browse[a]", False, None, ["format.unknown_action"]),  # not a WikiEnv action
]


@pytest.mark.parametrize("text,accepted,executed,codes", NUMBERED)
def test_numbered_react_style(text, accepted, executed, codes):
    check("react", text, accepted, executed, codes, ActionSpec(style="numbered"))


def test_numbered_react_lowercases_only_the_first_letter():
    spec = ActionSpec(style="numbered", actions=("Search", "Lookup", "Finish"))
    check("react", "Thought 1: x\nAction 1: search[a]", True, ("search", "a"), ["discipline.action_case"], spec)
    check("react", "Thought 1: x\nAction 1: SEARCH[a]", False, None, ["format.unknown_action"], spec)


# anchen1011/FireAct @ 94c6189f04b10fccae6bcd97a4632d6119266899, generation.py run: split("\nAction: ")[:2],
# or thought_action[len("Action: "):]; action.split('[')[:2], action_args[:-1]; "finish" in action_type.lower().
FIREACT = [
    ("Thought: find it.\nAction: search[capital of France?]", True, ("search", "capital of France?"), []),
    ("Thought: done.\nAction: finish[Paris]", True, ("finish", "Paris"), []),
    ("Action: search[x]", True, ("search", "x"), []),
    (
        "Thought: a\nAction: search[x]\nObservation: y\nThought: b\nAction: finish[z]",
        True,
        ("search", "x]\nObservation: y\nThought: "),  # FireAct drops the last character, whatever it is
        ["discipline.multiple_actions", "discipline.trailing_text"],
    ),
    ("Thought: x\nAction: search x", False, None, ["format.malformed_action"]),
    ("I would say Action: search[x]", False, None, ["format.malformed_action"]),
    ("Thought: x\naction: search[x]", False, None, ["format.malformed_action_label"]),
    ("Thought: no action yet", False, None, ["format.missing_action"]),
    ("Thought: x\nAction: lookup[x]", False, None, ["format.unknown_action"]),  # call_tools knows only search
    ("Thought: x\nAction: Finish[x]", True, ("Finish", "x"), []),  # "finish" in action_type.lower()
]


@pytest.mark.parametrize("text,accepted,executed,codes", FIREACT)
def test_fireact_style(text, accepted, executed, codes):
    check("react", text, accepted, executed, codes, ActionSpec(style="fireact"))


def test_fireact_and_numbered_tools_can_come_from_the_spec():
    fireact = ActionSpec(style="fireact", actions=("search", "lookup"))
    check("react", "Thought: x\nAction: lookup[x]", True, ("lookup", "x"), [], fireact)
    numbered = ActionSpec(style="numbered", actions=("Search", "Browse"))
    check("react", "Thought 1: x\nAction 1: Browse[a]", True, ("Browse", "a"), [], numbered)


def test_react_styles_are_detected_from_the_turn():
    def style(text):
        return parse_turn("react", {"role": "assistant", "content": text}).style

    assert style("Thought 1: x\nAction 1: Search[a]") == "numbered"
    assert style("Thought: x\nAction: search[a]") == "fireact"
    assert style("Action: Operation\n" + SQL) == "dbbench"


# THUDM/AgentBench v0.2 @ 41e6807349f741e06428fae3e9e4d334e7002362, src/server/tasks/alfworld/utils.py
# process_action: re.search("ACTION:(.*)"), .strip().lower(); not in choices -> the choice of highest BLEU > 0.01.
ALFWORLD_AGENTBENCH = [
    ("THOUGHT: the fridge.\n ACTION: go to fridge 1\n", True, ("go", "go to fridge 1"), []),
    ("ACTION: Go To Fridge 1", True, ("go", "go to fridge 1"), []),
    ("I go. ACTION: go to fridge 1", True, ("go", "go to fridge 1"), ["discipline.action_not_on_own_line"]),
    ("ACTION: go to fridge 1\nACTION: open fridge 1", True, ("go", "go to fridge 1"), ["discipline.multiple_actions"]),
    ("THOUGHT: x\nACTION: fly to the moon", True, ("fly", "fly to the moon"), ["discipline.unknown_command"]),
    ("THOUGHT: look around.\nAction: go to fridge 1", False, None, ["format.action_label_case"]),
    ("THOUGHT: x\nACTION:", False, None, ["format.empty_action"]),
    ("THOUGHT: I am thinking.", False, None, ["format.missing_action"]),
]


@pytest.mark.parametrize("text,accepted,executed,codes", ALFWORLD_AGENTBENCH)
def test_alfworld_agentbench_style(text, accepted, executed, codes):
    check("alfworld", text, accepted, executed, codes, ActionSpec(style="agentbench"))


def test_alfworld_agentbench_runs_the_nearest_admissible_command():
    spec = ActionSpec(style="agentbench", admissible=("go to fridge 1", "open drawer 2", "look"))
    nearest = ("go", "go to fridge 1")
    parsed = check("alfworld", "ACTION: go to the fridge", True, nearest, ["discipline.inadmissible_command"], spec)
    assert "go to fridge 1" in parsed.violations[0].message
    # nothing shares a word: BLEU is 0 everywhere, and the command is sent as it is
    check("alfworld", "ACTION: dance", True, ("dance", "dance"), ["discipline.inadmissible_command"], spec)


def test_bleu_is_nltks():
    nltk = pytest.importorskip("nltk.translate.bleu_score")
    from prefkit.formats.alfworld import bleu

    smoothing = nltk.SmoothingFunction().method4
    pairs = [
        ("go to fridge 1", "go to the fridge"),
        ("open drawer 2", "open drawer"),
        ("take apple 1 from countertop 1", "take apple from countertop"),
        ("look", "look around the room now"),
        ("go to fridge 1", "dance"),
        ("go to fridge 1", "fridge"),
        ("a b c d e f", "a b c d e f"),
    ]
    for reference, candidate in pairs:
        expected = nltk.sentence_bleu([reference.split()], candidate.split(), smoothing_function=smoothing)
        assert bleu(reference, candidate) == pytest.approx(expected, abs=1e-12), (reference, candidate)


# ysymyth/ReAct @ 6bdb3a1fd38b8188fc7ba4102969fe483df8fdc9, alfworld.ipynb alfworld_run: llm(..., stop=['\n']).strip(),
# startswith('think:') is a thought; anything else goes to env.step, which answers "Nothing happens." to what it
# does not know.
ALFWORLD_REACT = [
    ("think: First I need an apple.", True, ("think", "think: First I need an apple."), []),
    ("go to countertop 1", True, ("go", "go to countertop 1"), []),
    ("put mug 1 in/on coffeemachine 1", True, ("put", "put mug 1 in/on coffeemachine 1"), []),
    ("go to fridge 1\nopen fridge 1", True, ("go", "go to fridge 1"), ["discipline.multiple_actions"]),
    ("think:", True, ("think", "think:"), ["discipline.empty_thought"]),
    ("Think: I need an apple.", False, None, ["format.label_case"]),
    ("Sure, I will go to the fridge.", False, None, ["format.unknown_command"]),
    ("\ngo to fridge 1", False, None, ["format.empty_action"]),
]


@pytest.mark.parametrize("text,accepted,executed,codes", ALFWORLD_REACT)
def test_alfworld_react_style(text, accepted, executed, codes):
    check("alfworld", text, accepted, executed, codes, ActionSpec(style="react"))


# xingyaoww/code-act @ d607f56c9cfe9e8632ebaf65dcaf2b4b7fe1c6f8, mint/agents/base.py ("<solution>" in lm_output,
# stop words) and mint/envs/general_env.py parse_action ("\n".join(i.strip() for i in re.findall(...))).
CODEACT = [
    ("<thought>Sum.</thought>\n<execute>print(sum([1, 2]))</execute>", True, ("execute", "print(sum([1, 2]))"), []),
    ("The answer is <solution> 3 </solution>.", True, ("solution", "3"), []),
    (
        "<execute>a = 1</execute>\n<execute>print(a)</execute>",
        True,
        ("execute", "a = 1\nprint(a)"),
        ["discipline.multiple_actions"],
    ),
    ("<execute>print(1)</execute><solution>1</solution>", True, ("solution", "1"), ["discipline.multiple_actions"]),
    (
        "<execute>print(1)</execute>\nObservation: 1\n<solution>1</solution>",
        True,
        ("execute", "print(1)"),
        ["discipline.invented_observation"],
    ),
    ("<execute>print(1)</execute> <execute>", True, ("execute", "print(1)"), ["discipline.unclosed_tag"]),
    ("The answer is 3.", False, None, ["format.missing_action"]),
    ("<execute>print(1)", False, None, ["format.unclosed_tag"]),
    ("<execute>  </execute>", False, None, ["format.empty_action"]),
    ("<Execute>print(1)</Execute>", False, None, ["format.tag_case"]),
    ("<solution></solution>", False, None, ["format.empty_answer"]),
    ("<solution>3", False, None, ["format.empty_answer"]),
    ("Run this:\n```python\nprint(1)\n```", False, None, ["format.code_outside_execute"]),
]


@pytest.mark.parametrize("text,accepted,executed,codes", CODEACT)
def test_codeact_as_mint_reads_it(text, accepted, executed, codes):
    check("codeact", text, accepted, executed, codes)


# THUDM/AgentBench v0.2 @ 41e6807349f741e06428fae3e9e4d334e7002362, src/server/tasks/os_interaction/task.py
# extract_action: re.findall(r"Act:\s*(.+)"), last first; startswith bash/finish/answer in any case; answer needs
# "(" and ")"; "\n\n".join(re.findall(r"```bash\n(.*?)\n```", raw, re.DOTALL)).
BASH = "```bash\nls /etc | wc -l\n```"
OS = [
    ("Think: count them.\n\nAct: bash\n\n" + BASH, True, ("bash", "ls /etc | wc -l"), []),
    ("Think: it is 220.\n\nAct: answer(220)", True, ("answer", "220"), []),
    ("Think: all done.\n\nAct: finish", True, ("finish", ""), []),
    ("Act: Answer(220)", True, ("answer", "220"), ["discipline.malformed_action"]),
    ("Act: answer (a (b) c)", True, ("answer", "a (b) c"), ["discipline.malformed_action"]),
    ("Act: BASH\n" + BASH, True, ("bash", "ls /etc | wc -l"), ["discipline.malformed_action"]),
    ("Act: bash\nno code here", True, ("bash", ""), ["discipline.missing_code_block"]),
    ("Act: bash\n```sh\nls\n```", True, ("bash", ""), ["discipline.missing_code_block"]),
    ("Act: bash\n```bash\nls\n```\n```bash\npwd\n```", True, ("bash", "ls\n\npwd"), ["discipline.multiple_actions"]),
    ("Act: bash\n" + BASH + "\nAct: answer(3)", True, ("answer", "3"), ["discipline.multiple_actions"]),
    ("Act: answer(3)\nAct: answer 4", True, ("answer", "3"), ["discipline.multiple_actions"]),
    ("I will now Act: finish", True, ("finish", ""), ["discipline.action_not_on_own_line"]),
    ("Act:\nbash\n" + BASH, True, ("bash", "ls /etc | wc -l"), ["discipline.malformed_action_label"]),
    ("Act: answer 220", False, None, ["format.malformed_answer"]),
    ("Act: run\n" + BASH, False, None, ["format.unknown_action"]),
    ("act: bash\n" + BASH, False, None, ["format.malformed_action_label"]),
    ("Think: I should list the files.", False, None, ["format.missing_action"]),
]


@pytest.mark.parametrize("text,accepted,executed,codes", OS)
def test_os_interaction_as_agentbench_reads_it(text, accepted, executed, codes):
    check("os", text, accepted, executed, codes)


def test_os_answer_is_the_final_answer_and_thought_comes_before():
    parsed = parse_turn("os", {"role": "assistant", "content": "Think: it is 220.\n\nAct: answer(220)"})
    assert parsed.final_answer == "220" and parsed.thought == "it is 220." and parsed.valid


# Tool calls. ShishirPatil/gorilla BFCL ast_checker.py @ 0f6fbeb6a9222978acda2ed13353911afc17908c; OpenBMB/ToolBench
# rapidapi.py @ e8c6cd1d28d3da61710e59eaad83632d62384c65 (`function["name"].endswith(action_name)`).
TOOLS = (
    {
        "type": "function",
        "function": {
            "name": "weather_for_rapidweather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    },
)


def call(name, arguments, legacy=False):
    if legacy:
        return {"role": "assistant", "content": None, "function_call": {"name": name, "arguments": arguments}}
    function = {"name": name, "arguments": arguments}
    return {"role": "assistant", "content": "", "tool_calls": [{"id": "1", "type": "function", "function": function}]}


def test_tool_calls_as_the_dispatching_side_reads_them():
    args = json.dumps({"city": "Paris"})
    spec = ActionSpec(tools=TOOLS)
    executed = ("weather_for_rapidweather", '{"city": "Paris"}')
    check("tool-call", "", True, executed, [], spec, call("weather_for_rapidweather", args))
    check("tool-call", "", True, executed, [], spec, call("weather_for_rapidweather", args, legacy=True))
    check("tool-call", "", False, None, ["format.unknown_tool"], spec, call("weather", args))
    suffix = ActionSpec(tools=TOOLS, tool_match="suffix")
    check("tool-call", "", True, ("weather", '{"city": "Paris"}'), ["discipline.tool_name_suffix"], suffix,
          call("weather", args))  # fmt: skip
    two = call("weather_for_rapidweather", args)
    two["tool_calls"] = two["tool_calls"] * 2
    check("tool-call", "", True, executed, ["discipline.multiple_actions"], spec, two)
    assert parse_turn("tool-call", two, ActionSpec(tools=TOOLS, parallel_calls=True)).valid


def test_to_dict_reports_both_answers():
    parsed = parse_turn("react", {"role": "assistant", "content": "Action: Answer\nFinal Answer: 7"})
    record = parsed.to_dict()
    assert record["accepted"] and not record["disciplined"]
    assert record["discipline_codes"] == ["discipline.final_answer_not_list"] and record["format_codes"] == []
    assert record["executed"] == {"name": "Answer", "argument": " 7"}
    rejected = parse_turn("react", {"role": "assistant", "content": "Sure!"}).to_dict()
    assert not rejected["accepted"] and rejected["executed"] is None and rejected["format_codes"]
