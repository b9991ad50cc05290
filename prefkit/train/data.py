"""Training data for `prefkit dpo`: read pairs, check them against the model's own chat template, split."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from prefkit.errors import ConfigError, InputError
from prefkit.jsonl import describe_validation_error, read_jsonl
from prefkit.records import Pair, turn_text

log = logging.getLogger(__name__)


@dataclass
class DataReport:
    """What the checks found; stored in training_summary.json."""

    rows: int = 0
    train: int = 0
    eval: int = 0
    prompt_fills_max_length: int = 0
    chosen_cut: int = 0
    rejected_cut: int = 0
    left_out: list[str] = field(default_factory=list)
    max_tokens: int = 0
    # Mean completion length in tokens (chosen, rejected) by split: turns the displacement guard's per-sequence
    # log-probabilities into per-token ones.
    completion_tokens: dict[str, tuple[float, float]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-able view (left-out ids capped)."""
        out = dict(self.__dict__)
        out["left_out"] = self.left_out[:50]
        return out


def slim(row: dict) -> dict:
    """Only what training reads: messages, the id, and the meta keys the split and length check use."""
    meta = row.get("meta") if isinstance(row.get("meta"), dict) else {}
    kept_meta = {key: meta[key] for key in ("domain", "action_spec") if key in meta}
    return {
        "id": row.get("id"),
        "prompt": row["prompt"],
        "chosen": row["chosen"],
        "rejected": row["rejected"],
        "meta": kept_meta,
    }


def load_pairs(paths: list[Path]) -> list[dict]:
    """Pairs from JSONL files (precise file:line errors) or `datasets` directories, slimmed to what training
    reads (provenance under `meta` is not needed here and would only hold memory during training)."""
    rows: list[dict] = []
    for path in paths:
        path = Path(path)
        if path.is_dir():
            from datasets import load_from_disk

            try:
                dataset = load_from_disk(str(path))
            except Exception as error:  # datasets raises several kinds for a folder that is not a dataset
                raise InputError(f"not a `datasets` directory ({type(error).__name__})", str(path)) from None
            for index, row in enumerate(dataset):
                try:
                    Pair.model_validate(row)
                except ValidationError as error:
                    raise InputError(f"row {index}: {describe_validation_error(error)}", str(path)) from None
                rows.append(slim(dict(row)))
        else:
            rows.extend(slim(row) for row in read_jsonl(path, Pair))
    return rows


def check_pairs(rows: list[dict], source: str) -> None:
    """Refuse rows that cannot teach anything: wrong roles, or chosen identical to rejected."""
    same = [row for row in rows if turn_text(row["chosen"]).strip() == turn_text(row["rejected"]).strip()]
    if same:
        raise InputError(
            f"{len(same)} pairs have chosen identical to rejected (first: id {same[0].get('id')}); "
            "remove them (prefkit filter drops them as pair.identical)",
            source,
        )
    for row in rows:
        if row["chosen"][-1]["role"] != "assistant" or row["rejected"][-1]["role"] != "assistant":
            raise InputError(f"pair {row.get('id')}: chosen and rejected must end with an assistant message", source)


def chat_ids(tokenizer: Any, messages: list[dict], generation_prompt: bool, kwargs: dict) -> list[int]:
    """Token ids of `messages` rendered with the tokenizer's chat template."""
    output = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=generation_prompt, **kwargs)
    if isinstance(output, dict) or hasattr(output, "keys"):
        output = output["input_ids"]
    return list(output)


def measure_lengths(
    rows: list[dict], tokenizer: Any, max_length: int | None, template_kwargs: dict, report: DataReport
) -> list[dict]:
    """Count pairs TRL would drop (prompt fills max_length) or whose chosen would be cut; return the usable ones."""
    usable = []
    for row in rows:
        kwargs = dict(template_kwargs)
        tools = (
            (row.get("meta") or {}).get("action_spec", {}).get("tools") if isinstance(row.get("meta"), dict) else None
        )
        if tools:
            kwargs["tools"] = tools
        prompt = len(chat_ids(tokenizer, row["prompt"], True, kwargs))
        chosen = len(chat_ids(tokenizer, row["prompt"] + row["chosen"], False, kwargs))
        rejected = len(chat_ids(tokenizer, row["prompt"] + row["rejected"], False, kwargs))
        report.max_tokens = max(report.max_tokens, chosen, rejected)
        if max_length is not None and prompt >= max_length:
            report.prompt_fills_max_length += 1
            report.left_out.append(str(row.get("id")))
            continue
        if max_length is not None and chosen > max_length:
            # keep_start truncation would cut the end of chosen, where the action is: never train on that.
            report.chosen_cut += 1
            report.left_out.append(str(row.get("id")))
            continue
        if max_length is not None and rejected > max_length:
            report.rejected_cut += 1
        row["_completion_tokens"] = (chosen - prompt, rejected - prompt)
        usable.append(row)
    return usable


def mean_completion_tokens(rows: list[dict]) -> tuple[float, float]:
    """Mean (chosen, rejected) completion length of rows that went through `measure_lengths`."""
    if not rows:
        return (0.0, 0.0)
    counts = [row["_completion_tokens"] for row in rows]
    return (sum(c for c, _ in counts) / len(counts), sum(r for _, r in counts) / len(counts))


def split_pairs(rows: list[dict], share: float, seed: int) -> tuple[list[dict], list[dict]]:
    """Hold out `share` of the pairs, stratified by meta.domain when every domain has two or more pairs."""
    if share <= 0 or len(rows) < 2:
        return rows, []
    from sklearn.model_selection import train_test_split

    domains = [str((row.get("meta") or {}).get("domain")) for row in rows]
    counts = {d: domains.count(d) for d in set(domains)}
    test_size = max(1, round(len(rows) * share))
    stratify = domains if min(counts.values()) >= 2 and test_size >= len(counts) else None
    if stratify is None and len(counts) > 1:
        log.warning("eval split not stratified: some domains have fewer than 2 pairs")
    indices = list(range(len(rows)))
    train_idx, eval_idx = train_test_split(
        indices, test_size=test_size, random_state=seed, stratify=stratify, shuffle=True
    )
    return [rows[i] for i in sorted(train_idx)], [rows[i] for i in sorted(eval_idx)]


def to_dataset(rows: list[dict], template_kwargs: dict):
    """A `datasets.Dataset` with only what TRL reads: prompt/chosen/rejected (and tools, template kwargs)."""
    from datasets import Dataset

    def clean(messages: list[dict]) -> list[dict]:
        out = []
        for message in messages:
            item = {"role": message["role"], "content": message.get("content") or ""}
            if message.get("tool_calls"):
                item["tool_calls"] = message["tool_calls"]
            out.append(item)
        return out

    records = [
        {"prompt": clean(r["prompt"]), "chosen": clean(r["chosen"]), "rejected": clean(r["rejected"])} for r in rows
    ]
    if template_kwargs:
        for record in records:
            record["chat_template_kwargs"] = template_kwargs
    return Dataset.from_list(records)


def shuffle_copy(rows: list[dict], seed: int) -> list[dict]:
    """A shuffled copy (the input list is left as given)."""
    out = list(rows)
    random.Random(seed).shuffle(out)
    return out


def resolve_chat_template(tokenizer: Any, template: str | None, source: str) -> None:
    """Make sure the tokenizer has a chat template (the config's, as text or path, wins)."""
    if template:
        path = Path(template)
        tokenizer.chat_template = path.read_text(encoding="utf-8") if path.exists() else template
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(f"{source}: the tokenizer has no chat template; set `chat_template` (Jinja text or a file)")
