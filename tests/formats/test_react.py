"""The react format: DBBench Operation/Answer turns and ReAct's numbered Tool[arg] turns."""

import pytest

from prefkit.formats import ActionSpec, parse_turn


def codes(text, **spec):
    return parse_turn("react", {"role": "assistant", "content": text}, ActionSpec(**spec)).codes


SQL = "Thought: I need the rows.\nAction: Operation\n```sql\nSELECT * FROM t;\n```"


def test_operation_with_sql_block_is_valid():
    parsed = parse_turn("react", {"role": "assistant", "content": SQL})
    assert parsed.valid and parsed.action.name == "Operation" and parsed.action.argument == "SELECT * FROM t;"
    assert parsed.thought == "I need the rows."


def test_answer_with_final_answer_list_is_valid():
    parsed = parse_turn("react", {"role": "assistant", "content": 'Done.\nAction: Answer\nFinal Answer: ["7", "8"]'})
    assert parsed.valid and parsed.final_answer == ["7", "8"]


def test_numbered_react_turn_is_valid():
    parsed = parse_turn("react", {"role": "assistant", "content": "Thought 2: search it\nAction 2: Search[Paris]"})
    assert parsed.valid and parsed.action.name == "Search" and parsed.action.argument == "Paris"


@pytest.mark.parametrize(
    "text,code",
    [
        ("I think the answer is 7.", "format.missing_action"),
        ("Sure. Action: Operation\n```sql\nSELECT 1;\n```", "discipline.action_not_on_own_line"),
        ("Action:Operation\n```sql\nSELECT 1;\n```", "format.malformed_action_label"),
        ("action: Operation\n```sql\nSELECT 1;\n```", "format.malformed_action_label"),
        ("Action: Operation\n```SQL\nSELECT 1;\n```", "format.missing_sql_block"),
        ("Action: Operation\nSELECT 1;", "format.missing_sql_block"),
        ("Action: Operation\n```sql\n\n```", "discipline.empty_action"),
        ("Action: Operation\n```sql\nSELECT 1;\n```\n```sql\nSELECT 2;\n```", "discipline.multiple_actions"),
        ("Action: Answer\nFinal Answer: 7", "discipline.final_answer_not_list"),
        ('Action: Answer\nFinal Answer: "7"', "discipline.final_answer_not_list"),
        ("Action: Answer\nThe answer is 7", "format.missing_final_answer"),
        ("Action: Answer", "format.unterminated_action_line"),
        ("Action: Operation \n```sql\nSELECT 1;\n```", "format.malformed_action"),
        (SQL + "\nAction: Answer\nFinal Answer: [1]", "discipline.multiple_actions"),
        ("Thought 1: x\nAction 1: Search[a]\nObservation 1: made up", "discipline.invented_observation"),
        ("Thought 1: x\nAction 2: Search[a]", "format.step_mismatch"),
        ("Thought 1: x\nAction 1: Search(a)", "format.malformed_action"),
        ("", "format.empty"),
    ],
)
def test_broken_turns_name_their_violation(text, code):
    assert code in codes(text)


def test_allowed_actions_come_from_the_spec():
    assert "format.unknown_action" in codes("Thought 1: x\nAction 1: Browse[a]", actions=("Search", "Lookup", "Finish"))
    assert codes("Thought 1: x\nAction 1: Search[a]", actions=("Search", "Lookup", "Finish")) == []


def test_argument_grammar_comes_from_the_spec():
    spec = {"arguments": {"Operation": r"(?i)select\b.*"}}
    assert codes(SQL, **spec) == []
    assert "format.bad_argument" in codes(SQL.replace("SELECT * FROM t;", "DROP TABLE t;"), **spec)


def test_required_thought():
    assert "discipline.missing_thought" in codes("Action: Operation\n```sql\nSELECT 1;\n```", require_thought=True)
    assert codes("Action: Operation\n```sql\nSELECT 1;\n```") == []


@pytest.mark.parametrize(
    "raw",
    [
        '["a", 1]',
        "['a']",
        "[1.5, -0, 2e3]",
        "[true]",
        "[null]",
        "[NaN]",
        "[Infinity]",
        "[1E400]",
        '["a\\u00e9"]',
        '["a\\/b"]',
        '[["x", 2], 3]',
        '("a", 1)',
        '["a" "b"]',
        "[01]",
        '{"a": 1}',
        "[]",
        '["a\tb"]',
        "[True, None]",
    ],
)
@pytest.mark.filterwarnings("ignore:invalid escape sequence:DeprecationWarning")
def test_final_answer_is_read_as_python_reads_it(raw):
    """The JSON fast path must agree with `ast.literal_eval` on value, type and refusal."""
    import ast

    from prefkit.formats.react import _python_literal

    def read(reader):
        try:
            value = reader(raw)
        except (ValueError, SyntaxError):
            return "refused"
        return repr(value), type(value)

    assert read(_python_literal) == read(ast.literal_eval)


def test_action_names_compare_as_the_spec_says():
    """A benchmark that lowercases action names before comparing them: `actions_case: insensitive` (the spec's
    allowed names; the declared name's argument pattern still applies)."""
    from prefkit.formats import ActionSpec, parse_turn

    turn = {"role": "assistant", "content": "Thought 1: look it up.\nAction 1: search[Paris]"}
    strict = ActionSpec(actions=("Search", "Lookup", "Finish"), arguments={"Search": r"[A-Z]\w*"})
    # ReAct lower-cases the first letter itself: the turn is accepted, its spelling is not the spec's
    assert parse_turn("react", turn, strict).codes == ["discipline.action_case"]
    loose = strict.model_copy(update={"actions_case": "insensitive"})
    assert parse_turn("react", turn, loose).valid
    bad = {**turn, "content": turn["content"].replace("[Paris]", "[paris city]")}
    assert "format.bad_argument" in parse_turn("react", bad, loose).codes
