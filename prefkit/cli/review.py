"""`prefkit review`: the review stage's three modes (auto, tui, argilla) and the Argilla queue's own
commands (serve, add-annotator, push, status, pull)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from rich.table import Table

from prefkit.cli.app import console, echo_json, stage_context
from prefkit.cli.options import PATH, build_config, config_option, pop_config_flags
from prefkit.review.stage import ReviewConfig, read_pairs


@click.group("review")
def review_group() -> None:
    """Human review of pairs: an Argilla queue (serve, add-annotator, push, status, pull) or `tui` offline.

    \b
    Example:
      prefkit review serve &                 # local Argilla, credentials in its data dir
      prefkit review add-annotator alice     # her password goes to DATA_DIR/annotators/alice.json
      prefkit review push curated.jsonl --dataset dbbench-v1
      prefkit review status --dataset dbbench-v1
      prefkit review pull --dataset dbbench-v1 --out reviewed.jsonl
    """


def _default(field: str):
    """The review stage's default for a setting the queue commands share with it."""
    return ReviewConfig.model_fields[field].default


def _connection_options(command):
    """--api-url / --api-key / --data-dir / --workspace, shared by the commands that talk to a server."""
    command = click.option("--workspace", default=_default("workspace"), show_default=True, help="Argilla workspace.")(
        command
    )
    command = click.option(
        "--data-dir",
        type=PATH,
        help="Where `review serve` wrote credentials.json [default: ~/.local/share/prefkit/argilla].",
    )(command)
    command = click.option("--api-key", envvar="ARGILLA_API_KEY", help="API key [env ARGILLA_API_KEY].")(command)
    return click.option("--api-url", envvar="ARGILLA_API_URL", help="Argilla URL [env ARGILLA_API_URL].")(command)


@review_group.command("serve")
@click.option("--port", type=click.IntRange(1, 65535), default=6900, show_default=True, help="Port on 127.0.0.1.")
@click.option(
    "--data-dir",
    type=PATH,
    help="Database, logs and credentials.json [default: ~/.local/share/prefkit/argilla].",
)
@click.option("--database-url", help="PostgreSQL URL (postgresql+asyncpg://...) instead of SQLite in the data dir.")
@click.option("--redis-url", help="Use this Redis instead of starting redis-server.")
def review_serve_command(port: int, data_dir: Path | None, database_url: str | None, redis_url: str | None) -> None:
    """Run a local Argilla server (no Elasticsearch, no Docker) until Ctrl-C or SIGTERM.

    The first start builds the server's own environment (about a minute) and generates the owner's
    password and API key into DATA_DIR/credentials.json (readable by you only).

    \b
    Example:
      prefkit review serve --port 6900
    """
    from prefkit.review.serve import ArgillaServer, serve_forever

    server = ArgillaServer(
        data_dir, port=port, database_url=database_url, redis_url=redis_url, say=lambda text: console.print(text)
    )
    server.start()
    console.print(
        f"Argilla is up at {server.url} (user {server.credentials['username']}); password and API key "
        f"in {server.data_dir / 'credentials.json'}. Ctrl-C stops it."
    )
    sys.exit(serve_forever(server))


@review_group.command("push")
@click.argument("curated", metavar="CURATED.jsonl", type=PATH)
@click.option("--dataset", "dataset_name", required=True, help="Argilla dataset name (created if missing).")
@click.option(
    "--annotators-per-pair", default=_default("annotators_per_pair"), show_default=True, help="Answers a pair needs."
)
@click.option("--seed", default=_default("seed"), show_default=True, help="Seed of the A/B order per pair.")
@_connection_options
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def review_push_command(
    curated: Path,
    dataset_name: str,
    annotators_per_pair: int,
    seed: int,
    api_url: str | None,
    api_key: str | None,
    data_dir: Path | None,
    workspace: str,
    quiet: bool,
) -> None:
    """Put pairs into an Argilla review queue; pushing again updates records instead of duplicating.

    \b
    Example:
      prefkit review push curated.jsonl --dataset dbbench-v1 --annotators-per-pair 2
    """
    from rich.progress import Progress

    from prefkit.review.argilla_queue import push, resolve_connection

    rows = read_pairs(curated)
    connection = resolve_connection(api_url, api_key, data_dir)
    with Progress(console=console, disable=quiet, transient=True) as bar:
        task = bar.add_task("pushing pairs", total=len(rows))
        result = push(
            rows,
            connection,
            dataset_name,
            workspace,
            annotators_per_pair,
            seed,
            progress=lambda n: bar.advance(task, n),
        )
    console.print(
        f"{result['pairs']} pairs in '{dataset_name}' ({result['added']} added, {result['updated']} "
        f"updated); reviewers open {result['url']}"
    )


@review_group.command("add-annotator")
@click.argument("username")
@_connection_options
def review_add_annotator_command(
    username: str, api_url: str | None, api_key: str | None, data_dir: Path | None, workspace: str
) -> None:
    """Give a reviewer an account: an annotator with a generated password, in the workspace.

    The password goes into DATA_DIR/annotators/USERNAME.json (readable by you only), never on screen;
    an existing user is only added to the workspace.

    \b
    Example:
      prefkit review add-annotator alice
    """
    from prefkit.review.argilla_queue import add_annotator, resolve_connection
    from prefkit.review.serve import default_data_dir

    folder = Path(data_dir or default_data_dir()) / "annotators"
    result = add_annotator(resolve_connection(api_url, api_key, data_dir), username, folder, workspace)
    if result["created"]:
        console.print(
            f"annotator '{username}' created in workspace '{workspace}'; sign-in details in {result['credentials']}"
        )
    else:
        console.print(f"'{username}' already has an account; now a member of workspace '{workspace}'")


@review_group.command("status")
@_connection_options
@click.option("--dataset", "dataset_name", required=True, help="Argilla dataset name.")
@click.option("--json", "as_json", is_flag=True, help="Print the progress as JSON on stdout.")
def review_status_command(
    api_url: str | None, api_key: str | None, data_dir: Path | None, workspace: str, dataset_name: str, as_json: bool
) -> None:
    """Review progress: pairs completed and pending, and each annotator's answers.

    \b
    Example:
      prefkit review status --dataset dbbench-v1
    """
    from prefkit.review.argilla_queue import resolve_connection, status

    result = status(resolve_connection(api_url, api_key, data_dir), dataset_name, workspace)
    if as_json:
        echo_json(result)
        return
    console.print(
        f"'{dataset_name}': {result['completed']} of {result['total']} pairs completed, "
        f"{result['pending']} pending ({result['annotators_per_pair']} answer(s) per pair)"
    )
    table = Table("annotator", "submitted", "draft", "discarded", "pending")
    for user, counts in sorted(result["users"].items()):
        done = counts["submitted"] + counts["draft"] + counts["discarded"]
        table.add_row(
            user,
            *(str(counts[key]) for key in ("submitted", "draft", "discarded")),
            str(max(result["total"] - done, 0)),
        )
    console.print(table)


@review_group.command("pull")
@_connection_options
@click.option("--dataset", "dataset_name", required=True, help="Argilla dataset name.")
@click.option("--out", "out_path", required=True, type=PATH, help="Reviewed pairs (JSONL).")
@click.option(
    "--dropped",
    "dropped_path",
    type=PATH,
    help="Decided but dropped pairs (ties, both bad, splits) [default: OUT with .dropped.jsonl].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the counts and agreement as JSON on stdout.")
def review_pull_command(
    api_url: str | None,
    api_key: str | None,
    data_dir: Path | None,
    workspace: str,
    dataset_name: str,
    out_path: Path,
    dropped_path: Path | None,
    as_json: bool,
) -> None:
    """Turn submitted answers into pairs: "B better" swaps, "both bad" + correction replaces chosen, ties and
    splits are dropped; several annotators are aggregated by majority, with Fleiss'/Cohen's kappa.

    \b
    Example:
      prefkit review pull --dataset dbbench-v1 --out reviewed.jsonl
    """
    from prefkit.jsonl import write_jsonl
    from prefkit.outputs import check_outputs, side_file
    from prefkit.review.argilla_queue import pull, resolve_connection

    dropped_path = dropped_path or side_file(out_path, "dropped")
    check_outputs([], {"--out": out_path, "--dropped": dropped_path})
    result = pull(resolve_connection(api_url, api_key, data_dir), dataset_name, workspace)
    write_jsonl(out_path, result.kept)
    write_jsonl(dropped_path, result.dropped)
    report = {
        "counts": dict(sorted(result.counts.items())),
        "agreement": result.agreement,
        "out": str(out_path),
        "dropped": str(dropped_path),
    }
    if as_json:
        echo_json(report)
        return
    table = Table("outcome", "pairs")
    for key, value in sorted(result.counts.items()):
        table.add_row(key, str(value))
    console.print(table)
    if result.agreement.get("pairs_with_several_answers"):
        console.print(f"agreement: {json.dumps(result.agreement)}")
    console.print(f"{len(result.kept)} reviewed pairs -> {out_path}; {len(result.dropped)} dropped -> {dropped_path}")


def _review(mode: str, curated: Path, out_path: Path, dropped_path: Path | None, quiet: bool, flags: dict,
            api_key: str | None = None) -> None:  # fmt: skip
    from prefkit.review.stage import review_pairs

    config = build_config(ReviewConfig, {"mode": mode}, pop_config_flags(flags), f"review {mode} options")
    counts = review_pairs(config, curated, out_path, dropped_path, api_key=api_key, ctx=stage_context(quiet))
    if not quiet:
        console.print(f"{counts}; reviewed pairs -> {out_path}")


@review_group.command("auto")
@click.argument("curated", metavar="CURATED.jsonl", type=PATH)
@click.option("--out", "out_path", required=True, type=PATH, help="Reviewed pairs (JSONL).")
@click.option("--dropped", "dropped_path", type=PATH, help="Ties [default: OUT.dropped.jsonl].")
@click.option("-q", "--quiet", is_flag=True, help="No summary.")
def review_auto_command(curated: Path, out_path: Path, dropped_path: Path | None, quiet: bool) -> None:
    """Accept the rule-based preference for every pair, no human: kept as given or swapped; ties dropped.

    \b
    Example:
      prefkit review auto curated.jsonl --out reviewed.jsonl
    """
    _review("auto", curated, out_path, dropped_path, quiet, {})


@review_group.command("tui")
@click.argument("curated", metavar="CURATED.jsonl", type=PATH)
@click.option("--out", "out_path", required=True, type=PATH, help="Reviewed pairs (JSONL).")
@click.option("--dropped", "dropped_path", type=PATH, help="Ties, both bad [default: OUT.dropped.jsonl].")
@config_option(ReviewConfig, "seed")
def review_tui_command(curated: Path, out_path: Path, dropped_path: Path | None, **flags) -> None:
    """Review pairs one at a time in the terminal: A/B in random order, keys a/b/t/x/s/u/q.

    Every answer is saved at once (OUT.decisions.jsonl); run the same command again to resume (until every
    pair is decided it ends with exit 1). "B better" swaps chosen and rejected; ties and both-bad pairs go to
    the dropped file.

    \b
    Example:
      prefkit review tui runs/quickstart/curated.jsonl --out reviewed.jsonl
    """
    _review("tui", curated, out_path, dropped_path, False, flags)


@review_group.command("argilla")
@click.argument("curated", metavar="CURATED.jsonl", type=PATH)
@click.option("--out", "out_path", required=True, type=PATH, help="Reviewed pairs (JSONL).")
@click.option("--dropped", "dropped_path", type=PATH, help="Ties, splits [default: OUT.dropped.jsonl].")
@config_option(ReviewConfig, "dataset", required=True)
@config_option(ReviewConfig, "workspace")
@config_option(ReviewConfig, "annotators_per_pair")
@config_option(ReviewConfig, "seed")
@config_option(ReviewConfig, "api_url", envvar="ARGILLA_API_URL")
@config_option(ReviewConfig, "data_dir")
@config_option(ReviewConfig, "wait", negative="no-wait")
@config_option(ReviewConfig, "poll_seconds")
@click.option("--api-key", envvar="ARGILLA_API_KEY", help="API key [env ARGILLA_API_KEY].")
@click.option("-q", "--quiet", is_flag=True, help="No summary.")
def review_argilla_command(curated: Path, out_path: Path, dropped_path: Path | None, api_key: str | None,
                           quiet: bool, **flags) -> None:  # fmt: skip
    """Push pairs to an Argilla queue once, then pull the answers when every pair is reviewed.

    Until then it stops with exit 6 and the progress; run the same command again (or pass --wait).

    \b
    Example:
      prefkit review argilla curated.jsonl --out reviewed.jsonl --dataset dbbench-v1 --wait
    """
    _review("argilla", curated, out_path, dropped_path, quiet, flags, api_key)
