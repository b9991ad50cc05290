"""The review stage: curated pairs in, reviewed pairs out, in one of three modes. `auto` accepts the
rule-based preference; `tui` asks one person in the terminal; `argilla` pushes the pairs to a review queue
once, and pulls the answers when every pair is reviewed (or stops, exit 6, saying how to go on).
`prefkit review auto|tui|argilla` and a recipe's `review:` section both call `review_pairs`."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from prefkit.config import ConfigPath
from prefkit.errors import ConfigError, InputError, MissingExtraError, PrefkitError, ReviewPending
from prefkit.jsonl import read_json, read_jsonl, write_json, write_jsonl
from prefkit.outputs import check_outputs, side_file
from prefkit.privacy import redact_url
from prefkit.records import Pair, content_hash, ensure_pair_id
from prefkit.stage import Output, Plan, Stage, StageContext

ReviewMode = Literal["auto", "tui", "argilla"]


class ReviewConfig(BaseModel):
    """Settings of the review stage (the `review:` section of a recipe)."""

    model_config = ConfigDict(extra="forbid")

    mode: ReviewMode = Field(
        "auto",
        description="auto accepts the rule-based preference; tui asks you in the terminal; argilla pushes "
        "to a review queue and pulls the answers once every pair is reviewed.",
    )
    seed: int = Field(0, description="tui and argilla: seed of the A/B order per pair.")
    dataset: str | None = Field(None, description="argilla: dataset name [default: the recipe's name or file name].")
    workspace: str = Field("prefkit", description="argilla: workspace.")
    annotators_per_pair: int = Field(1, ge=1, description="argilla: submitted answers each pair needs.")
    api_url: str | None = Field(
        None,
        description="argilla: server URL [default: ARGILLA_API_URL, then the credentials of `prefkit review serve` "
        "in data_dir]. The API key never goes in a recipe: ARGILLA_API_KEY or data_dir.",
    )
    data_dir: ConfigPath | None = Field(
        None, description="argilla: `prefkit review serve`'s data dir (credentials.json)."
    )
    wait: bool = Field(
        False,
        description="argilla: keep polling until every pair is reviewed, instead of stopping with instructions "
        "to run again.",
    )
    poll_seconds: float = Field(30.0, gt=0, description="argilla: seconds between progress checks when waiting.")


def read_pairs(path: Path) -> list[dict]:
    """Pairs, validated, each with its id."""
    return [ensure_pair_id(row) for row in read_jsonl(path, Pair)]


def review_pairs(
    config: ReviewConfig,
    pairs: Path,
    out: Path,
    dropped: Path | None = None,
    *,
    api_key: str | None = None,
    ctx: StageContext | None = None,
) -> dict[str, Any]:
    """Review the pairs in `pairs`: kept ones into `out`, decided but dropped ones (ties, both bad without a
    correction, splits) into `dropped` [default OUT.dropped.jsonl]; returns the counts. Raises ReviewPending
    while argilla reviewers are not done."""
    ctx = ctx or StageContext()
    dropped = dropped or side_file(out, "dropped")
    outputs = {"--out": out, "--dropped": dropped}
    if config.mode in ("tui", "argilla"):  # the answers log, the push record
        kind, suffix = ("decisions", ".jsonl") if config.mode == "tui" else ("push", ".json")
        outputs[f"--out's {kind} file"] = side_file(out, kind, suffix)
    check_outputs([pairs], outputs)
    if config.mode == "argilla":
        _check_argilla(config, ctx.source, api_key)
    rows = read_pairs(pairs)
    if config.mode == "argilla":
        return _argilla(config, rows, pairs, out, dropped, api_key, ctx)
    if config.mode == "tui":
        from prefkit.review.tui import review

        counts = review(rows, out, _ask, _show, config.seed, dropped)
        decided = sum(counts.values())
        if decided < len(rows):
            raise PrefkitError(
                f"review stopped with {decided} of {len(rows)} pairs decided; run again to go on "
                "(every answer so far is saved)"
            )
        return {"pairs": len(read_jsonl(out, allow_empty=True)), **counts}
    from prefkit.review.auto import auto_review

    kept, thrown, counts = auto_review(rows)
    write_jsonl(out, kept)
    write_jsonl(dropped, thrown)
    return {"pairs": len(kept), **{k: v for k, v in counts.items() if v}}


def _console():
    from rich.console import Console

    return Console()


def _ask(prompt: str) -> str:
    try:
        return _console().input(prompt)
    except EOFError:
        return "q"


def _show(renderable: Any) -> None:
    _console().print(renderable)


def _check(config: ReviewConfig, source: str) -> None:
    """Before a recipe's first stage: a tui review needs a terminal (a run must not work for an hour and then
    wait for keys nobody can press; `prefkit review tui` itself also reads keys from a pipe), an argilla
    review a reachable configuration."""
    if config.mode == "tui" and not sys.stdin.isatty():
        raise ConfigError(f"{source}: review mode 'tui' needs a terminal, and standard input is not one")
    if config.mode == "argilla":
        _check_argilla(config, source, None)


def _check_argilla(config: ReviewConfig, source: str, api_key: str | None) -> None:
    try:
        import argilla  # noqa: F401
    except ImportError:
        raise MissingExtraError("review", "argilla") from None
    from prefkit.review.argilla_queue import resolve_connection

    try:
        resolve_connection(config.api_url, api_key, config.data_dir)
    except InputError as error:
        raise ConfigError(f"{source}: review mode 'argilla': {error}") from None


def _argilla(
    config: ReviewConfig,
    rows: list[dict],
    pairs: Path,
    out: Path,
    dropped: Path,
    api_key: str | None,
    ctx: StageContext,
) -> dict[str, Any]:
    """Push once per pairs file (recorded in OUT.push.json), then pull when every pair of it is reviewed. Only
    these pairs count: a dataset may also hold pairs pushed earlier from other files."""
    from prefkit.review.argilla_queue import pull, push, resolve_connection

    connection = resolve_connection(config.api_url, api_key, config.data_dir)
    name = config.dataset or pairs.stem
    ids = {row["id"] for row in rows}
    marker = side_file(out, "push", ".json")
    pushed = {
        "pairs_file": content_hash([row["id"] for row in rows]),
        "dataset": name,
        "workspace": config.workspace,
        "annotators_per_pair": config.annotators_per_pair,
        "url": redact_url(connection.api_url),
    }
    try:
        previous = read_json(marker, "a push record", "") if marker.exists() else None
    except InputError:
        previous = None  # pushing again updates the records, it never duplicates them
    if previous is None or {k: previous.get(k) for k in pushed} != pushed:
        result = push(rows, connection, name, config.workspace, config.annotators_per_pair, config.seed)
        previous = {**pushed, "review_url": result["url"], "pairs": result["pairs"]}
        write_json(marker, previous)
        ctx.say(f"pushed {result['pairs']} pairs to Argilla dataset '{name}' ({result['added']} new)")
    while True:
        result = pull(connection, name, config.workspace)
        kept = [row for row in result.kept if row["id"] in ids]
        thrown = [row for row in result.dropped if row["id"] in ids]
        if len(kept) + len(thrown) >= len(ids):
            break
        message = f"{len(kept) + len(thrown)} of {len(ids)} pairs reviewed in '{name}' ({previous['review_url']})"
        if not config.wait:
            raise ReviewPending(
                f"{message}; when reviewers are done, run the same command again to pull their answers "
                "(or set review.wait: true)"
            )
        ctx.say(f"waiting for reviewers: {message}")
        time.sleep(config.poll_seconds)
    write_jsonl(out, kept)
    write_jsonl(dropped, thrown)
    write_json(side_file(out, "report", ".json"), {"counts": dict(result.counts), "agreement": result.agreement})
    counts: dict[str, Any] = {"pairs": len(kept), "dropped": len(thrown)}
    if result.agreement.get("fleiss_kappa") is not None:
        counts["fleiss kappa"] = result.agreement["fleiss_kappa"]
    return counts


def _plan(config: ReviewConfig, plan: Plan) -> ReviewConfig:
    """A recipe's Argilla dataset is named after the recipe unless it says otherwise."""
    return config if config.dataset is not None else config.model_copy(update={"dataset": plan.recipe_name})


STAGE = Stage(
    "review",
    ReviewConfig,
    review_pairs,
    inputs={"pairs": "pairs"},
    outputs={"out": Output("pairs", "reviewed.jsonl"), "dropped": Output("dropped-pairs", "reviewed.dropped.jsonl")},
    check=_check,
    plan=_plan,
)
