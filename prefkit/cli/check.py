"""`prefkit check`: single assistant turns against a format, with their violations."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import click

from prefkit.cli.options import PATH
from prefkit.errors import InputError


@click.command("check")
@click.argument("file", required=False, type=PATH)
@click.option("--format", "format_name", required=True, help="Format to check against (react, alfworld, ...).")
@click.option("--text", help="Check this one assistant turn instead of a file.")
@click.option(
    "--spec",
    "spec_path",
    type=PATH,
    help="YAML action spec (allowed actions, argument patterns, tools).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON result per turn on stdout.")
def check_command(file: Path | None, format_name: str, text: str | None, spec_path: Path | None, as_json: bool) -> None:
    """Check single assistant turns as the benchmark's parser reads them (exit 1 when any is not valid).

    Each turn gets two answers: accepted (the benchmark's parser takes it; what it would execute and what it
    would ignore are shown) and disciplined (prefkit's stricter rules for training data: one action, nothing
    after it, canonical labels). A turn is valid when it is both. `format.*` codes are the benchmark's
    rejections, `discipline.*` codes the stricter rules'.

    FILE is JSONL of messages ({"role": "assistant", ...}), of conversations ({"messages": [...]}) or of
    pairs (chosen and rejected are checked).

    \b
    Example:
      prefkit check --format react --text $'Thought: look.\\nAction: Operation\\n```sql\\nSELECT 1;\\n```\\n'
      prefkit check --format alfworld turns.jsonl
    """
    from prefkit.config import read_yaml, validate_config
    from prefkit.formats import ActionSpec, parse_turn
    from prefkit.jsonl import iter_jsonl

    spec = validate_config(ActionSpec, read_yaml(spec_path), str(spec_path)) if spec_path else ActionSpec()
    if (file is None) == (text is None):
        raise click.UsageError("give either FILE or --text")
    turns = (
        [("text", {"role": "assistant", "content": text})]
        if text is not None
        else list(_turns_of(iter_jsonl(file), file))
    )
    invalid = rejected = 0
    for where, message in turns:
        parsed = parse_turn(format_name, message, spec)
        invalid += not parsed.valid
        rejected += not parsed.accepted
        if as_json:
            record = {"where": where, "valid": parsed.valid, **parsed.to_dict()}
            record["action"] = dataclasses.asdict(parsed.action) if parsed.action else None
            click.echo(json.dumps(record, ensure_ascii=False))
            continue
        verdict = "ok" if parsed.valid else ("accepted, not disciplined" if parsed.accepted else "rejected")
        click.echo(f"{where}: {verdict}" + (f" ({parsed.style})" if parsed.style else ""))
        if parsed.accepted and parsed.executed is not None:
            click.echo(f"  executes: {parsed.executed.name} {_shown(parsed.executed.argument)}".rstrip())
            if parsed.ignored:
                click.echo(f"  ignores:  {_shown(parsed.ignored)}")
        for violation in parsed.violations:
            click.echo(f"  {violation.code}: {violation.message}")
    if not as_json:
        valid, accepted = len(turns) - invalid, len(turns) - rejected
        click.echo(f"{valid} of {len(turns)} turns valid ({accepted} accepted by the benchmark)", err=True)
    sys.exit(1 if invalid else 0)


def _shown(text: str, limit: int = 200) -> str:
    """One line for a terminal: newlines shown as \\n, long text cut."""
    flat = text.replace("\n", "\\n")
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _turns_of(rows, path: Path):
    for line, row in rows:
        if "role" in row:
            yield f"{path}:{line}", row
        elif isinstance(row.get("messages"), list):
            for index, message in enumerate(row["messages"]):
                if isinstance(message, dict) and message.get("role") in ("assistant", "agent"):
                    yield f"{path}:{line}:messages[{index}]", message
        elif "chosen" in row and "rejected" in row:
            for side in ("chosen", "rejected"):
                for message in row[side] if isinstance(row[side], list) else []:
                    yield f"{path}:{line}:{side}", message
        else:
            raise InputError("expected a message, a 'messages' list or a pair", str(path), line)
