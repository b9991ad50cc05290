"""`prefkit filter` and `prefkit check` through the CLI runner: files, exit codes, reports, plots."""

import json

from click.testing import CliRunner

from prefkit.cli import cli
from tests.conftest import swapped
from tests.filters.helpers import pair


def write(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_filter_writes_kept_dropped_report_and_plots(tmp_path, corpus_pairs):
    rows = corpus_pairs[:60] + [swapped(p) for p in corpus_pairs[60:80]]
    for row in rows:
        row["meta"]["mine"] = "keep me"
    src = write(tmp_path / "in.jsonl", rows)
    result = CliRunner().invoke(
        cli,
        [
            "filter",
            str(src),
            "--out",
            str(tmp_path / "kept.jsonl"),
            "--report",
            str(tmp_path / "r.json"),
            "--plots",
            str(tmp_path / "plots"),
            "--json",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    kept, dropped = lines(tmp_path / "kept.jsonl"), lines(tmp_path / "kept.dropped.jsonl")
    assert len(kept) + len(dropped) == 80
    assert len(dropped) >= 20
    assert all(row["meta"]["filter"]["reasons"] for row in dropped)
    assert all(row["meta"]["mine"] == "keep me" for row in kept + dropped)
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["kept"] == len(kept) and sum(report["reasons"].values()) >= len(dropped)
    assert json.loads(result.stdout)["total"] == 80
    assert (tmp_path / "plots" / "tokens_hist.png").stat().st_size > 1000
    assert (tmp_path / "plots" / "filler_hist.png").exists()


def test_format_flag_overrides_meta_format(tmp_path):
    row = pair(chosen="go to fridge 1", rejected="Sure! I will go to the fridge.", fmt="react")
    src = write(tmp_path / "in.jsonl", [row])
    runner = CliRunner()
    out = tmp_path / "k.jsonl"
    runner.invoke(cli, ["filter", str(src), "--out", str(out), "-q"])
    assert lines(out) == []
    result = runner.invoke(cli, ["filter", str(src), "--out", str(out), "--format", "alfworld", "-q"])
    assert result.exit_code == 0 and len(lines(out)) == 1


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"prompt": [}\n')
    result = CliRunner().invoke(cli, ["filter", str(src), "--out", str(tmp_path / "k.jsonl"), "-q"])
    assert result.exit_code == 2
    assert result.stderr.strip().count("\n") == 0
    assert "in.jsonl:1: malformed JSON" in result.stderr
    assert not (tmp_path / "k.jsonl").exists()


def test_skip_invalid_keeps_going(tmp_path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(pair()) + "\n{broken\n")
    result = CliRunner().invoke(
        cli, ["filter", str(src), "--out", str(tmp_path / "k.jsonl"), "--skip-invalid", "-q", "--json"]
    )
    assert result.exit_code == 0
    assert json.loads(result.stdout)["invalid_lines"] == 1
    assert (tmp_path / "k.invalid.jsonl").exists()


def test_unknown_config_key_names_key_and_suggestion(tmp_path):
    config = tmp_path / "f.yaml"
    config.write_text("verbosity:\n  max_thougth_tokens: 10\n")
    src = write(tmp_path / "in.jsonl", [pair()])
    result = CliRunner().invoke(cli, ["filter", str(src), "--out", str(tmp_path / "k.jsonl"), "--config", str(config)])
    assert result.exit_code == 2
    assert "unknown key 'verbosity.max_thougth_tokens' (did you mean 'verbosity.max_thought_tokens'?)" in result.stderr


def test_refuses_to_overwrite_its_input(tmp_path):
    src = write(tmp_path / "in.jsonl", [pair()])
    result = CliRunner().invoke(cli, ["filter", str(src), "--out", str(src), "-q"])
    assert result.exit_code == 2 and "is also an input of this command" in result.stderr
    assert len(lines(src)) == 1


def test_check_reports_violations_and_exit_code(tmp_path):
    turns = write(
        tmp_path / "t.jsonl",
        [
            {"role": "assistant", "content": "THOUGHT: hm\nACTION: go to fridge 1"},
            {"role": "assistant", "content": "THOUGHT: hm\nAction: go to fridge 1"},
        ],
    )
    result = CliRunner().invoke(cli, ["check", "--format", "alfworld", str(turns)])
    assert result.exit_code == 1
    assert "t.jsonl:1: ok" in result.stdout and "t.jsonl:2: rejected" in result.stdout
    assert "  format.action_label_case: " in result.stdout
    ok = CliRunner().invoke(cli, ["check", "--format", "alfworld", "--text", "open fridge 1", "--json"])
    assert ok.exit_code == 0 and json.loads(ok.stdout)["valid"] is True


def test_check_shows_what_the_benchmark_would_execute_and_ignore():
    turn = "Thought: count.\nAction: Operation\n```sql\nSELECT\nCOUNT(*) FROM t;\n```\n```sql\nDROP TABLE t;\n```"
    result = CliRunner().invoke(cli, ["check", "--format", "react", "--text", turn])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "text: accepted, not disciplined (dbbench)"
    assert lines[1] == "  executes: Operation SELECT COUNT(*) FROM t;"  # AgentBench joins the lines
    assert lines[2] == "  ignores:  ```sql\\nDROP TABLE t;\\n```"
    assert lines[3].startswith("  discipline.multiple_actions: ")
    assert "0 of 1 turns valid (1 accepted by the benchmark)" in result.stderr
    record = json.loads(CliRunner().invoke(cli, ["check", "--format", "react", "--text", turn, "--json"]).stdout)
    assert record["accepted"] is True and record["disciplined"] is False and record["valid"] is False
    assert record["executed"] == {"name": "Operation", "argument": "SELECT COUNT(*) FROM t;"}
    assert record["discipline_codes"] == ["discipline.multiple_actions"] and record["format_codes"] == []


def test_check_unknown_format(tmp_path):
    result = CliRunner().invoke(cli, ["check", "--format", "yaml", "--text", "x"])
    assert result.exit_code == 2 and "unknown format 'yaml'" in result.stderr


def test_help_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys; from prefkit.cli import cli; import prefkit.filters.pipeline; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_dedup_permutations_not_a_multiple_of_bands_is_a_one_line_config_error(tmp_path, corpus_pairs):
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps(row) + "\n" for row in corpus_pairs[:5]))
    config = tmp_path / "filters.yaml"
    config.write_text("dedup:\n  num_perm: 30\n  bands: 8\n")
    result = CliRunner().invoke(
        cli, ["filter", str(pairs), "--config", str(config), "--out", str(tmp_path / "k.jsonl")]
    )
    assert result.exit_code == 2
    assert result.stderr == f"error: {config}: 'dedup': num_perm (30) must be a multiple of bands (8)\n"


def test_a_demo_model_size_its_heads_cannot_split_is_a_one_line_config_error(tmp_path):
    result = CliRunner().invoke(cli, ["demo-model", "--out", str(tmp_path / "m"), "--hidden-size", "20"])
    assert result.exit_code == 2
    assert result.stderr == (
        "error: demo-model options: 'hidden_size': must be a multiple of 8 (4 attention heads of even size)\n"
    )
    assert not (tmp_path / "m").exists()
