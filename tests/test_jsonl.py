"""Reading JSONL: precise errors on bad input, skip-invalid side file; writing is atomic."""

import json

import pytest

from prefkit.errors import InputError
from prefkit.jsonl import InvalidLines, read_jsonl, write_jsonl
from prefkit.records import Pair, pair_id

GOOD = {
    "prompt": [{"role": "user", "content": "q"}],
    "chosen": [{"role": "assistant", "content": "a"}],
    "rejected": [{"role": "assistant", "content": "b"}],
}


def write_lines(path, *lines: bytes):
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_malformed_json_names_file_and_line(tmp_path):
    path = write_lines(tmp_path / "in.jsonl", json.dumps(GOOD).encode(), b'{"prompt": [')
    with pytest.raises(InputError, match=r"in\.jsonl:2: malformed JSON"):
        read_jsonl(path, Pair)


def test_missing_key_names_the_key(tmp_path):
    row = dict(GOOD)
    del row["rejected"]
    path = write_lines(tmp_path / "in.jsonl", json.dumps(row).encode())
    with pytest.raises(InputError, match=r"in\.jsonl:1: rejected: required key is missing"):
        read_jsonl(path, Pair)


def test_unknown_role_is_rejected(tmp_path):
    row = json.loads(json.dumps(GOOD))
    row["chosen"][0]["role"] = "robot"
    path = write_lines(tmp_path / "in.jsonl", json.dumps(row).encode())
    with pytest.raises(InputError, match=r":1: chosen\.0\.role"):
        read_jsonl(path, Pair)


def test_empty_file_is_an_error(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text("\n\n")
    with pytest.raises(InputError, match="no records"):
        read_jsonl(path, Pair)


def test_non_utf8_line(tmp_path):
    path = write_lines(tmp_path / "in.jsonl", json.dumps(GOOD).encode(), b'{"x": "caf\xe9"}')
    with pytest.raises(InputError, match=r":2: not valid UTF-8"):
        read_jsonl(path, Pair)


def test_not_an_object(tmp_path):
    path = write_lines(tmp_path / "in.jsonl", b"[1, 2]")
    with pytest.raises(InputError, match="expected a JSON object"):
        read_jsonl(path, Pair)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_jsonl(tmp_path / "nope.jsonl")


def test_skip_invalid_sets_bad_lines_aside_without_losing_them(tmp_path):
    path = write_lines(tmp_path / "in.jsonl", json.dumps(GOOD).encode(), b"{oops", b'{"x": "caf\xe9"}')
    invalid = InvalidLines(tmp_path / "bad.jsonl")
    rows = read_jsonl(path, Pair, invalid=invalid)
    invalid.flush()
    assert len(rows) == 1 and len(invalid) == 2
    side = [json.loads(line) for line in (tmp_path / "bad.jsonl").read_text().splitlines()]
    assert [s["line"] for s in side] == [2, 3]
    assert side[0]["raw"] == "{oops"
    assert "raw_base64" in side[1]


def test_atomic_write_leaves_old_file_intact_on_failure(tmp_path):
    path = tmp_path / "out.jsonl"
    write_jsonl(path, [{"a": 1}])

    def rows():
        yield {"a": 2}
        raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError):
        write_jsonl(path, rows())
    assert path.read_text() == '{"a":1}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_pair_id_is_stable_and_content_based():
    a = pair_id(GOOD["prompt"], GOOD["chosen"], GOOD["rejected"])
    assert a == pair_id(json.loads(json.dumps(GOOD["prompt"])), GOOD["chosen"], GOOD["rejected"])
    assert a != pair_id(GOOD["prompt"], GOOD["rejected"], GOOD["chosen"])


def test_json_reports_never_hold_nan(tmp_path):
    from prefkit.jsonl import write_json

    write_json(tmp_path / "report.json", {"kappa": float("nan"), "rows": [float("inf"), 1.5], "n": 2})
    text = (tmp_path / "report.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text, parse_constant=lambda name: pytest.fail(name)) == {
        "kappa": None,
        "rows": [None, 1.5],
        "n": 2,
    }


def test_only_a_command_with_skip_invalid_suggests_it(tmp_path):
    from click.testing import CliRunner

    from prefkit.cli import cli

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "messages": [{"role": "user", "content": "hi"}]}\nnot json\n')
    offered = {
        ("generate", str(bad), "--strategy", "corrupt", "--out", str(tmp_path / "c.jsonl")): True,
        ("tasks", str(bad), "--from", "tasks", "--out", str(tmp_path / "t.jsonl")): True,
        ("filter", str(bad), "--out", str(tmp_path / "f.jsonl")): True,
        ("review", "auto", str(bad), "--out", str(tmp_path / "r.jsonl")): False,
        ("check", "--format", "react", str(bad)): False,
        ("tasks", str(bad), "--from", "messages", "--out", str(tmp_path / "m.jsonl")): False,
    }
    for argv, has_flag in offered.items():
        result = CliRunner().invoke(cli, list(argv))
        assert result.exit_code == 2 and f"{bad}:" in result.stderr, (argv, result.output)
        assert ("--skip-invalid" in result.stderr) == has_flag, (argv, result.stderr)
