"""The Argilla review queue: push curated pairs, see progress, pull the decisions back into pairs.

Each pair becomes one record whose id is the pair id (so pushing again updates it), showing the prompt and
the two turns as A and B in an order drawn per pair and recorded in hidden metadata, with the rule-based
preference as a suggestion. The whole pair rides along in hidden metadata, so `pull` needs nothing but the
server and no `meta` key is ever lost. Argilla is the `argilla` SDK 2.x (`pip install 'prefkit[review]'`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import secrets
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

from prefkit.errors import InputError, MissingExtraError, PrefkitError, ServerError
from prefkit.jsonl import read_json
from prefkit.privacy import make_private, register_secret
from prefkit.records import ensure_pair_id, turn_text
from prefkit.review.aggregate import LABELS, Answer, apply_decision, cohen_kappa, fleiss_kappa
from prefkit.review.auto import RuleJudge
from prefkit.review.serve import Connection, check_server, default_data_dir
from prefkit.review.tui import shown_order
from prefkit.scoring import VerbosityConfig

log = logging.getLogger(__name__)

GUIDELINES = Path(__file__).resolve().parents[2] / "annotation" / "guidelines.md"
DEFAULT_WORKSPACE = "prefkit"
# Label values as stored in Argilla -> the labels `aggregate` works with.
LABEL_VALUES = {"a_better": "A better", "b_better": "B better", "tie": "tie", "both_bad": "both bad"}
LABEL_TITLES = {
    "a_better": "A is better",
    "b_better": "B is better",
    "tie": "Tie (equally good)",
    "both_bad": "Both bad",
}
PAIR_KEY = "prefkit_pair"  # extra metadata: the pair as pushed, JSON
ORDER_KEY = "order"
FIELDS = ("prompt", "response_a", "response_b")


def resolve_connection(
    api_url: str | None = None, api_key: str | None = None, data_dir: Path | None = None
) -> Connection:
    """Flags, then ARGILLA_API_URL/ARGILLA_API_KEY, then the credentials `serve` wrote into the data dir."""
    api_url = api_url or os.environ.get("ARGILLA_API_URL")
    api_key = api_key or os.environ.get("ARGILLA_API_KEY")
    if not (api_url and api_key):
        path = Path(data_dir or default_data_dir()) / "credentials.json"
        if not path.exists():
            raise InputError(
                f"no Argilla server given and no credentials in {path.parent}: pass --api-url and "
                "--api-key, set ARGILLA_API_URL and ARGILLA_API_KEY, or start one with "
                "`prefkit review serve`"
            )
        credentials = read_json(path, "the credentials `prefkit review serve` writes", "start the server again")
        api_url = api_url or credentials.get("url")
        api_key = api_key or credentials.get("api_key")
        if not (api_url and api_key):
            raise InputError(
                "no url/api_key in the credentials: start the server with `prefkit review serve`", str(path)
            )
    register_secret(api_key)  # an error the server sends back must not show it
    return Connection(api_url.rstrip("/"), api_key)


@contextlib.contextmanager
def sdk_errors(connection: Connection, doing: str):
    """Errors from the SDK or the connection, as one line that says what failed and what to do."""
    import httpx
    from argilla._exceptions import ArgillaError

    try:
        yield
    except ArgillaError as error:
        detail = " ".join(str(error).split())
        raise ServerError(f"the Argilla server at {connection.api_url} refused to {doing}: {detail[:400]}") from None
    except httpx.HTTPError as error:
        raise ServerError(
            f"lost the Argilla server at {connection.api_url} while trying to {doing} ({error}); "
            "running the command again is safe (records are keyed by pair id)"
        ) from None


def connect(connection: Connection):
    """An `argilla.Argilla` client, after checking the server answers and the key works."""
    try:
        import argilla as rg
    except ImportError:
        raise MissingExtraError("review", "argilla") from None
    check_server(connection)
    return rg.Argilla(api_url=connection.api_url, api_key=connection.api_key, timeout=120)


def dataset_settings(annotators_per_pair: int = 1):
    """Fields, questions, metadata and guidelines of a prefkit review dataset."""
    import argilla as rg

    return rg.Settings(
        guidelines=GUIDELINES.read_text(),
        fields=[
            rg.ChatField("prompt", title="Context (the agent's conversation so far)", use_markdown=False),
            rg.TextField("response_a", title="Response A", use_markdown=False),
            rg.TextField("response_b", title="Response B", use_markdown=False),
        ],
        questions=[
            rg.LabelQuestion("preference", title="Which next turn is better?", labels=LABEL_TITLES),
            rg.TextQuestion(
                "correction",
                title="Corrected turn (optional; with 'Both bad' it becomes the chosen answer)",
                required=False,
                use_markdown=False,
            ),
            rg.TextQuestion("comment", title="Comment (optional)", required=False, use_markdown=False),
        ],
        metadata=[
            rg.TermsMetadataProperty("domain"),
            rg.TermsMetadataProperty("format"),
            rg.TermsMetadataProperty("strategy"),
            rg.TermsMetadataProperty("a_valid", title="A valid format"),
            rg.TermsMetadataProperty("b_valid", title="B valid format"),
            rg.IntegerMetadataProperty("a_chars", title="A length (chars)"),
            rg.IntegerMetadataProperty("b_chars", title="B length (chars)"),
            rg.IntegerMetadataProperty("a_filler", title="A filler phrases"),
            rg.IntegerMetadataProperty("b_filler", title="B filler phrases"),
            rg.FloatMetadataProperty("rule_margin", title="Rule score margin (A - B)"),
            # Which side is the teacher's chosen turn: hidden, or it would undo the random order.
            rg.TermsMetadataProperty(ORDER_KEY, visible_for_annotators=False),
        ],
        allow_extra_metadata=True,
        distribution=rg.TaskDistribution(min_submitted=annotators_per_pair),
    )


MAX_SHOWN_CHARS = 20_000  # argilla-server's default limit on one chat message (ARGILLA_MAX_MESSAGE_LENGTH)
MAX_ROLE_CHARS = 20


def _shown(text: str) -> str:
    """Text as the reviewer sees it: the head and tail of very long messages (the pair itself is kept whole
    in hidden metadata, so nothing is lost)."""
    if len(text) <= MAX_SHOWN_CHARS:
        return text or "(empty)"
    keep = (MAX_SHOWN_CHARS - 100) // 2  # the marker takes well under 100 characters
    return f"{text[:keep]}\n[... {len(text) - 2 * keep:,} characters not shown ...]\n{text[-keep:]}"


def _prompt_messages(prompt: list[dict]) -> list[dict]:
    """Chat messages Argilla accepts: non-empty, not over its length limits, tool calls written out."""
    return [
        {"role": str(message.get("role") or "unknown")[:MAX_ROLE_CHARS], "content": _shown(turn_text([message]))}
        for message in prompt
    ]


def to_record(row: dict, judge: RuleJudge, seed: int = 0, order: str | None = None):
    """One Argilla record for one pair (`order`: the one already shown, when the pair was pushed before)."""
    import argilla as rg

    if order not in ("chosen-first", "rejected-first"):
        order = shown_order(row["id"], seed)
    first, second = ("chosen", "rejected") if order == "chosen-first" else ("rejected", "chosen")
    meta = row.get("meta") or {}
    metadata: dict[str, Any] = {
        ORDER_KEY: order,
        PAIR_KEY: json.dumps(row, ensure_ascii=False),
        "a_chars": len(turn_text(row[first])),
        "b_chars": len(turn_text(row[second])),
    }
    for key in ("domain", "format", "strategy"):
        if isinstance(meta.get(key), str) and meta[key]:
            metadata[key] = meta[key]
    suggestions = []
    a, b = judge.score(row, first), judge.score(row, second)
    if a is not None and b is not None:
        margin = judge.value(a) - judge.value(b)
        metadata.update(
            a_valid="yes" if a.parsed.valid else "no",
            b_valid="yes" if b.parsed.valid else "no",
            a_filler=len(a.filler),
            b_filler=len(b.filler),
            rule_margin=round(margin, 4),
        )
        label = "a_better" if margin > 0 else "b_better" if margin < 0 else "tie"
        # Confidence from the margin: 0.5 when level, towards 1 as one side's rule score pulls away.
        suggestions.append(
            rg.Suggestion("preference", label, score=round(1 / (1 + math.exp(-abs(margin))), 4), agent="prefkit-rules")
        )
    return rg.Record(
        id=row["id"],
        fields={
            "prompt": _prompt_messages(row["prompt"]),
            "response_a": _shown(turn_text(row[first])),
            "response_b": _shown(turn_text(row[second])),
        },
        metadata=metadata,
        suggestions=suggestions,
    )


def _find_dataset(client, name: str, workspace: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the SDK warns when a dataset is missing; None says as much
        return client.datasets(name=name, workspace=workspace)


def _check_is_ours(dataset, name: str) -> None:
    names = {item.name for item in dataset.settings.fields} | {q.name for q in dataset.settings.questions}
    if not set(FIELDS) | {"preference"} <= names:
        raise InputError(
            f"dataset '{name}' exists but was not made by `prefkit review push` (it lacks "
            f"{sorted(set(FIELDS) | {'preference'} - names)}): choose another --dataset"
        )


@contextlib.contextmanager
def _quiet_sdk():
    """The SDK draws a tqdm bar per `log` call; ours is the one the user sees."""
    from argilla.records import _dataset_records

    original = _dataset_records.tqdm
    _dataset_records.tqdm = lambda *args, **kwargs: original(*args, **{**kwargs, "disable": True})
    try:
        yield
    finally:
        _dataset_records.tqdm = original


def push(
    rows: list[dict],
    connection: Connection,
    dataset_name: str,
    workspace: str = DEFAULT_WORKSPACE,
    annotators_per_pair: int = 1,
    seed: int = 0,
    verbosity: VerbosityConfig | None = None,
    batch_size: int = 500,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """Create the dataset if needed and upsert one record per pair; counts of created and updated records."""
    if annotators_per_pair < 1:
        raise InputError(f"--annotators-per-pair must be at least 1, got {annotators_per_pair}")
    rows = [ensure_pair_id(row) for row in rows]
    first_seen: dict[str, int] = {}
    for number, row in enumerate(rows, 1):
        if row["id"] in first_seen:
            raise InputError(
                f"pair {row['id']} is on lines {first_seen[row['id']]} and {number}: one record per "
                "pair id; remove the repeat (or run `prefkit filter`, which drops duplicates)"
            )
        first_seen[row["id"]] = number
    client = connect(connection)
    with sdk_errors(connection, f"take the pairs for '{dataset_name}'"):
        return _push(
            client,
            rows,
            connection,
            dataset_name,
            workspace,
            annotators_per_pair,
            seed,
            verbosity,
            batch_size,
            progress,
        )


def _push(
    client, rows, connection, dataset_name, workspace, annotators_per_pair, seed, verbosity, batch_size, progress
) -> dict:
    import argilla as rg

    if client.workspaces(name=workspace) is None:
        rg.Workspace(name=workspace, client=client).create()
    dataset = _find_dataset(client, dataset_name, workspace)
    created = dataset is None
    if created:
        dataset = rg.Dataset(
            name=dataset_name, workspace=workspace, client=client, settings=dataset_settings(annotators_per_pair)
        ).create()
    else:
        _check_is_ours(dataset, dataset_name)
        if dataset.settings.distribution.min_submitted != annotators_per_pair:
            dataset.settings.distribution = rg.TaskDistribution(min_submitted=annotators_per_pair)
            try:
                dataset.update()
            except Exception as error:  # noqa: BLE001 - the server says why (responses exist)
                raise PrefkitError(
                    f"cannot change annotators per pair of '{dataset_name}' to {annotators_per_pair}: {error}"
                ) from None
    # A pair pushed before keeps the A/B order its reviewers saw, whatever the seed now: answers already given
    # are read through that order.
    before = {
        record.id: (record.metadata or {}).get(ORDER_KEY)
        for record in dataset.records(with_responses=False, with_suggestions=False)
    }
    judge = RuleJudge(verbosity)
    with _quiet_sdk():
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            dataset.records.log(
                [to_record(row, judge, seed, before.get(row["id"])) for row in batch], batch_size=len(batch)
            )
            if progress:
                progress(len(batch))
    updated = sum(1 for row in rows if row["id"] in before)
    return {
        "dataset": dataset_name,
        "workspace": workspace,
        "pairs": len(rows),
        "updated": updated,
        "added": len(rows) - updated,
        "dataset_created": created,
        "annotators_per_pair": annotators_per_pair,
        "url": f"{connection.api_url}/dataset/{dataset.id}/annotation-mode",
    }


def _get_dataset(client, name: str, workspace: str):
    dataset = _find_dataset(client, name, workspace)
    if dataset is None:
        raise InputError(
            f"no dataset '{name}' in workspace '{workspace}' on the server: push it first with `prefkit review push`"
        )
    _check_is_ours(dataset, name)
    return dataset


# Argilla 1.x's username rule (ES_INDEX_REGEX_PATTERN in argilla-io/argilla src/argilla/server/constants.py,
# which its UserCreate schema applied); argilla-server 2.8 (api/schemas/v1/users.py) only asks for one
# character. The name also becomes a file name, so prefkit keeps the stricter rule, up to 64 characters.
USERNAME = re.compile(r"(?![-_])[a-z0-9_-]{1,64}")


def check_username(username: str) -> None:
    """An annotator name: lowercase letters, digits, '-' and '_', not starting with '-' or '_', at most 64."""
    if not USERNAME.fullmatch(username):
        shown = repr(username if len(username) <= 40 else username[:40] + "...")
        raise InputError(
            f"{shown} is not a valid annotator name: use 1-64 lowercase letters, digits, '-' and '_', not "
            "starting with '-' or '_' (e.g. alice, reviewer-2)"
        )


def add_annotator(connection: Connection, username: str, folder: Path, workspace: str = DEFAULT_WORKSPACE) -> dict:
    """Create an annotator account with a generated password in the workspace (or add an existing annotator
    to it); a new account's credentials go into FOLDER/USERNAME.json, readable by this user only. A name that
    breaks Argilla's username rule, or is an owner's or admin's account, changes nothing."""
    import argilla as rg

    from prefkit.outputs import name_inside
    from prefkit.review.serve import write_private

    check_username(username)
    out = name_inside(folder, username, ".json")
    client = connect(connection)
    with sdk_errors(connection, f"add the annotator '{username}'"):
        space = client.workspaces(name=workspace) or rg.Workspace(name=workspace, client=client).create()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the SDK warns when the user does not exist yet
            user = client.users(username=username)
        created = user is None
        if not created and user.role != "annotator":
            raise InputError(
                f"'{username}' is an {user.role} account on the server, not an annotator; choose another name"
            )
        if created:
            # The file first: a password that only ever existed on the server would be lost.
            password = secrets.token_urlsafe(12)
            folder.mkdir(parents=True, exist_ok=True)
            make_private(folder)
            write_private(
                out,
                json.dumps({"url": connection.api_url, "username": username, "password": password}, indent=2) + "\n",
            )
            try:
                user = rg.User(username=username, password=password, role="annotator", client=client).create()
            except BaseException:
                out.unlink(missing_ok=True)
                raise
        if username not in [member.username for member in space.users]:
            user.add_to_workspace(space)
    return {
        "username": username,
        "workspace": workspace,
        "created": created,
        "credentials": str(out) if created else None,
    }


def status(connection: Connection, dataset_name: str, workspace: str = DEFAULT_WORKSPACE) -> dict:
    """Records completed/pending, and each annotator's submitted/draft/discarded counts."""
    client = connect(connection)
    with sdk_errors(connection, f"report progress of '{dataset_name}'"):
        dataset = _get_dataset(client, dataset_name, workspace)
        progress = dataset.progress(with_users_distribution=True)
    users = {}
    for username, sides in (progress.get("users") or {}).items():
        counts = Counter()
        for side in sides.values():
            counts.update({key: value or 0 for key, value in side.items()})
        users[username] = {key: counts.get(key, 0) for key in ("submitted", "draft", "discarded")}
    return {
        "dataset": dataset_name,
        "workspace": workspace,
        "total": progress.get("total", 0),
        "completed": progress.get("completed", 0),
        "pending": progress.get("pending", 0),
        "annotators_per_pair": dataset.settings.distribution.min_submitted,
        "users": users,
    }


@dataclass
class PullResult:
    """Pairs the reviewers decided (kept), decided but dropped, and what happened."""

    kept: list[dict] = field(default_factory=list)
    dropped: list[dict] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    agreement: dict = field(default_factory=dict)


def _answers(record, usernames: dict[str, str]) -> tuple[list[Answer], Counter]:
    by_user: dict[str, dict] = defaultdict(dict)
    statuses: Counter = Counter()
    for response in record.responses:
        user = str(response.user_id)
        by_user[user]["status"] = str(getattr(response.status, "value", response.status))
        by_user[user][response.question_name] = response.value
    answers = []
    for user, values in by_user.items():
        statuses[values.get("status")] += 1
        label = LABEL_VALUES.get(values.get("preference"))
        if values.get("status") == "submitted" and label:
            answers.append(
                Answer(
                    annotator=usernames.get(user, user),
                    label=label,
                    correction=values.get("correction") or None,
                    comment=values.get("comment") or None,
                )
            )
    return answers, statuses


def pull(
    connection: Connection,
    dataset_name: str,
    workspace: str = DEFAULT_WORKSPACE,
    progress: Callable[[int], None] | None = None,
) -> PullResult:
    """Map every submitted answer back onto its pair (see `aggregate.apply_decision`)."""
    client = connect(connection)
    with sdk_errors(connection, f"hand out the records of '{dataset_name}'"):
        return _pull(client, dataset_name, workspace, progress)


def _pull(client, dataset_name: str, workspace: str, progress) -> PullResult:
    dataset = _get_dataset(client, dataset_name, workspace)
    usernames = {str(user.id): user.username for user in client.users}
    result = PullResult()
    per_item: list[dict[str, str]] = []
    for record in dataset.records(with_responses=True, with_suggestions=False, batch_size=500):
        result.counts["records"] += 1
        if progress:
            progress(1)
        metadata = record.metadata or {}
        try:
            row = json.loads(metadata[PAIR_KEY])
            order = metadata[ORDER_KEY]
        except (KeyError, TypeError, ValueError):
            result.counts["not_from_prefkit"] += 1  # a record someone added by hand: nothing to map back
            continue
        answers, statuses = _answers(record, usernames)
        result.counts["discarded_responses"] += statuses.get("discarded", 0)
        result.counts["draft_responses"] += statuses.get("draft", 0)
        if not answers:
            result.counts["pending"] += 1
            continue
        per_item.append({answer.annotator: answer.label for answer in answers})
        kept, decision = apply_decision(row, order, answers)
        decision = {"mode": "argilla", "dataset": dataset_name, "workspace": workspace, **decision}
        if kept is None:
            outcome = "undecided" if decision["label"] is None else decision["label"].replace(" ", "_")
            result.counts[f"dropped_{outcome}"] += 1
            dropped = dict(row, meta=dict(row.get("meta") or {}, review=decision))
            result.dropped.append(dropped)
            continue
        outcome = "corrected" if decision.get("corrected") else "swapped" if decision.get("swapped") else "as_pushed"
        result.counts[f"kept_{outcome}"] += 1
        kept["meta"] = dict(kept.get("meta") or {}, review=decision)
        result.kept.append(kept)
    result.agreement = agreement(per_item)
    return result


def agreement(items: list[dict[str, str]]) -> dict:
    """Fleiss' kappa over pairs with the same number (>= 2) of answers, Cohen's for each pair of annotators."""
    counts = Counter(len(item) for item in items if len(item) >= 2)
    out: dict[str, Any] = {"pairs_with_several_answers": sum(counts.values())}
    if counts:
        raters, _ = counts.most_common(1)[0]
        ratings = [list(item.values()) for item in items if len(item) == raters]
        value = fleiss_kappa(ratings, LABELS)
        out["fleiss_kappa"] = None if value is None else round(value, 4)
        out["fleiss_pairs"] = len(ratings)
    annotators = sorted({name for item in items for name in item})
    cohen = {}
    for first, second in combinations(annotators, 2):
        shared = [item for item in items if first in item and second in item]
        value = cohen_kappa([item[first] for item in shared], [item[second] for item in shared])
        if value is not None:
            cohen[f"{first}|{second}"] = {"kappa": round(value, 4), "pairs": len(shared)}
    if cohen:
        out["cohen_kappa"] = cohen
    return out
