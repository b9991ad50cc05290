"""Argilla's search-engine interface answered from Argilla's own SQL database (SQLite or PostgreSQL).

Runs inside the argilla-server virtual environment (see `annotation/launch.py`), registered as
`ARGILLA_SEARCH_ENGINE=prefkit-sql`. The database already holds every record, response and suggestion, so
the write hooks (index_records, update_record_response, ...) have nothing to do, every server process and
rq worker sees the same state, and nothing needs rebuilding at start-up. Reads load a compact projection
of one dataset (no field texts unless a text query asks for them) and filter, sort and page it in Python,
with Elasticsearch's meanings: missing values sort last, a "pending" response status means no response
(by that user), list values match when any element does, a text query needs every term (AND).

Vector similarity search answers with a clear "not supported": point `--api-url` at an Argilla server
backed by Elasticsearch for that.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from typing import Any
from uuid import UUID

from argilla_server.database import AsyncSessionLocal
from argilla_server.enums import MetadataPropertyType, ResponseStatusFilter, SortOrder
from argilla_server.errors.future import UnprocessableEntityError
from argilla_server.models import Dataset, MetadataProperty, Question, Record, Response, Suggestion, User
from argilla_server.search_engine.base import (
    AndFilter,
    FloatMetadataMetrics,
    IntegerMetadataMetrics,
    MetadataFilterScope,
    RecordFilterScope,
    ResponseFilterScope,
    SearchEngine,
    SearchResponseItem,
    SearchResponses,
    SuggestionFilterScope,
    TermsFilter,
    TermsMetrics,
    TextQuery,
)
from sqlalchemy import String, cast, func, literal, select, text

ENGINE_NAME = "prefkit-sql"
NOT_SUPPORTED = (
    "vector similarity search is not supported by prefkit's SQL search engine; "
    "use an Argilla server backed by Elasticsearch for it"
)


_EMPTY: dict = {}
_NONE: list = []


class _Row:
    """What filtering and sorting need of one record: no field texts."""

    __slots__ = (
        "id",
        "external_id",
        "status",
        "inserted_at",
        "updated_at",
        "metadata",
        "responses",
        "suggestions",
        "fields",
    )

    def __init__(self, values: tuple):
        self.id, self.external_id, self.status, self.inserted_at, self.updated_at, self.metadata = values
        self.metadata = self.metadata or _EMPTY
        # Most records have no responses yet: share one empty value until the first one arrives.
        self.responses: list[tuple[str, str, dict]] = _NONE  # (user_id, status, values)
        self.suggestions: dict[str, dict] = _EMPTY
        self.fields: dict | None = None

    def record_value(self, name: str) -> Any:
        if name == "id":
            return str(UUID(self.id))  # the database's text form, written as the API writes ids
        value = getattr(self, name, None) if name in _Row.__slots__ else None
        return _enum_value(value)


@SearchEngine.register(engine_name=ENGINE_NAME)
class SQLSearchEngine(SearchEngine):
    """Search, progress and metrics straight from the records, responses and suggestions tables."""

    def __init__(self, session):
        self.db = session

    @classmethod
    async def new_instance(cls) -> SQLSearchEngine:
        return cls(AsyncSessionLocal())

    async def close(self):
        await self.db.close()

    async def ping(self) -> bool:
        try:
            await self.db.execute(text("SELECT 1"))
            return True
        except Exception:  # noqa: BLE001 - the server only asks "is it up?"
            return False

    async def info(self) -> dict:
        return {"distribution": "prefkit-sql", "version": "1", "backend": self.db.bind.dialect.name}

    # The database is the index: writes are already there when these hooks run.
    async def create_index(self, dataset: Dataset):
        pass

    async def delete_index(self, dataset: Dataset):
        pass

    async def configure_metadata_property(self, dataset: Dataset, metadata_property: MetadataProperty):
        pass

    async def configure_index_vectors(self, vector_settings):
        pass

    async def index_records(self, dataset: Dataset, records: Iterable[Record]):
        pass

    async def partial_record_update(self, record: Record, **update):
        pass

    async def delete_records(self, dataset: Dataset, records: Iterable[Record]):
        pass

    async def update_record_response(self, response: Response):
        pass

    async def delete_record_response(self, response: Response):
        pass

    async def update_record_suggestion(self, suggestion: Suggestion):
        pass

    async def delete_record_suggestion(self, suggestion: Suggestion):
        pass

    async def get_dataset_progress(self, dataset: Dataset) -> dict:
        if dataset.is_draft:
            return {}
        rows = await self.db.execute(
            select(Record.status, func.count()).where(Record.dataset_id == dataset.id).group_by(Record.status)
        )
        counts = {_enum_value(status): count for status, count in rows.all()}
        return {"total": sum(counts.values()), **counts}

    async def get_dataset_user_progress(self, dataset: Dataset, user: User) -> dict:
        if dataset.is_draft:
            return {}
        rows = await self.db.execute(
            select(Response.status, func.count())
            .join(Record, Response.record_id == Record.id)
            .where(Record.dataset_id == dataset.id, Response.user_id == user.id)
            .group_by(Response.status)
        )
        counts = {_enum_value(status): count for status, count in rows.all()}
        return {"total": sum(counts.values()), **counts}

    async def search(
        self,
        dataset: Dataset,
        query: TextQuery | str | None = None,
        filter=None,
        sort=None,
        offset: int = 0,
        limit: int = 100,
        user_id: str | None = None,
    ) -> SearchResponses:
        scopes = _scopes(filter) + [order.scope for order in sort or []]
        rows = await self._load(
            dataset.id,
            with_fields=query is not None,
            text=query,
            with_metadata=any(isinstance(scope, MetadataFilterScope) for scope in scopes),
            with_responses=any(isinstance(scope, ResponseFilterScope) for scope in scopes),
            with_suggestions=any(isinstance(scope, SuggestionFilterScope) for scope in scopes),
            with_dates=any(
                isinstance(scope, RecordFilterScope) and scope.property in ("inserted_at", "updated_at")
                for scope in scopes
            ),
        )
        if query is not None:
            rows = [row for row in rows if _text_matches(row.fields or {}, query)]
        if filter is not None:
            rows = [row for row in rows if _matches(row, filter)]
        rows = _sorted(rows, sort or [], user_id)
        return SearchResponses(
            items=[
                SearchResponseItem(record_id=UUID(str(row.id)), score=None) for row in rows[offset : offset + limit]
            ],
            total=len(rows),
        )

    async def similarity_search(
        self,
        dataset,
        vector_settings,
        value=None,
        record=None,
        query=None,
        filter=None,
        max_results: int = 100,
        order=None,
        threshold=None,
    ) -> SearchResponses:
        raise UnprocessableEntityError(NOT_SUPPORTED)

    async def compute_metrics_for(self, metadata_property: MetadataProperty):
        result = await self.db.execute(
            select(Record.metadata_).where(Record.dataset_id == metadata_property.dataset_id)
        )
        values = []
        for (metadata,) in result.all():
            value = (metadata or {}).get(metadata_property.name)
            values.extend(value if isinstance(value, list) else [] if value is None else [value])
        kind = metadata_property.settings.get("type")
        if kind == MetadataPropertyType.terms:
            counts = Counter(str(value) for value in values)
            return TermsMetrics(
                total=sum(counts.values()),
                values=[TermsMetrics.TermCount(term=term, count=count) for term, count in counts.most_common()],
            )
        numbers = [value for value in values if isinstance(value, (int, float)) and not isinstance(value, bool)]
        metrics = IntegerMetadataMetrics if kind == MetadataPropertyType.integer else FloatMetadataMetrics
        return metrics(min=min(numbers, default=None), max=max(numbers, default=None))

    async def _load(
        self,
        dataset_id,
        with_fields: bool,
        text=None,
        with_metadata: bool = True,
        with_responses: bool = True,
        with_suggestions: bool = True,
        with_dates: bool = True,
    ) -> list[_Row]:
        """Only what the query looks at: a record's metadata can be large (prefkit keeps the whole pair there),
        and the reviewers' "next record" query needs none of it."""
        # Dates are parsed row by row on SQLite: select them only when a filter or sort looks at them, and
        # let the database put the records in insertion order.
        columns = [
            _key(Record.id),
            Record.external_id,
            Record.status,
            Record.inserted_at if with_dates else literal(None),
            Record.updated_at if with_dates else literal(None),
            Record.metadata_ if with_metadata else literal(None),
        ]
        query = select(*columns).where(Record.dataset_id == dataset_id).order_by(Record.inserted_at, Record.id)
        rows = {row[0]: _Row(tuple(row)) for row in (await self.db.execute(query)).all()}
        if with_responses:
            await self._load_responses(dataset_id, rows)
        if with_suggestions:
            await self._load_suggestions(dataset_id, rows)
        if with_fields:
            query = select(_key(Record.id), Record.fields).where(Record.dataset_id == dataset_id)
            # Plain words must appear in the stored JSON too: let the database skip records without them
            # (a superset of the matches; `_text_matches` decides).
            for term in _plain_terms(text):
                query = query.where(cast(Record.fields, String).ilike(f"%{term}%"))
            result = await self.db.execute(query)
            for record_id, fields in result.all():
                if record_id in rows:
                    rows[record_id].fields = fields or {}
        return list(rows.values())

    async def _load_responses(self, dataset_id, rows: dict) -> None:
        responses = await self.db.execute(
            select(_key(Response.record_id), Response.user_id, Response.status, Response.values)
            .join(Record, Response.record_id == Record.id)
            .where(Record.dataset_id == dataset_id)
        )
        for record_id, user_id, status, values in responses.all():
            row = rows.get(record_id)
            if row is not None:
                if row.responses is _NONE:
                    row.responses = []
                row.responses.append((str(user_id), _enum_value(status), values or {}))

    async def _load_suggestions(self, dataset_id, rows: dict) -> None:
        suggestions = await self.db.execute(
            select(
                _key(Suggestion.record_id),
                Question.name,
                Suggestion.value,
                Suggestion.score,
                Suggestion.agent,
                Suggestion.type,
            )
            .join(Record, Suggestion.record_id == Record.id)
            .join(Question, Suggestion.question_id == Question.id)
            .where(Record.dataset_id == dataset_id)
        )
        for record_id, question, value, score, agent, kind in suggestions.all():
            row = rows.get(record_id)
            if row is not None:
                if row.suggestions is _EMPTY:
                    row.suggestions = {}
                row.suggestions[question] = {"value": value, "score": score, "agent": agent, "type": _enum_value(kind)}


def _key(column):
    """A record id as the database stores it (text): turning 10,000 of them into UUID objects for every
    search cost more than the search itself; only the returned page is converted."""
    return cast(column, String)


def _enum_value(value: Any) -> Any:
    return getattr(value, "value", value)


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _comparable(value: Any) -> Any:
    """Dates compare as epoch milliseconds (what Elasticsearch ranges on dates use); everything else as is."""
    if isinstance(value, datetime):
        return value.timestamp() * 1000
    return value


def _in_range(value: Any, ge: float | None, le: float | None) -> bool:
    value = _comparable(value)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    return (ge is None or value >= ge) and (le is None or value <= le)


def _value_matches(values: list, condition) -> bool:
    if isinstance(condition, TermsFilter):
        wanted = {str(v) for v in condition.values}
        return any(str(_enum_value(v)) in wanted for v in values)
    return any(_in_range(v, condition.ge, condition.le) for v in values)


def _responses_of(row: _Row, user: User | None) -> list[tuple[str, str, dict]]:
    if user is None:
        return row.responses
    return [response for response in row.responses if response[0] == str(user.id)]


def _response_value(values: dict, question: str) -> Any:
    answer = values.get(question)
    return answer.get("value") if isinstance(answer, dict) else None


def _scopes(condition) -> list:
    """Every scope a filter looks at."""
    if condition is None:
        return []
    if isinstance(condition, AndFilter):
        return [scope for part in condition.filters for scope in _scopes(part)]
    return [condition.scope]


def _matches(row: _Row, condition) -> bool:
    if isinstance(condition, AndFilter):
        return all(_matches(row, part) for part in condition.filters)
    scope = condition.scope
    if isinstance(scope, RecordFilterScope):
        return _value_matches(_as_list(row.record_value(scope.property)), condition)
    if isinstance(scope, MetadataFilterScope):
        return _value_matches(_as_list(row.metadata.get(scope.metadata_property)), condition)
    if isinstance(scope, SuggestionFilterScope):
        suggestion = row.suggestions.get(scope.question) or {}
        return _value_matches(_as_list(suggestion.get(str(scope.property))), condition)
    if isinstance(scope, ResponseFilterScope):
        responses = _responses_of(row, scope.user)
        if scope.question:
            return any(
                _value_matches(_as_list(_response_value(values, scope.question)), condition)
                for _, _, values in responses
            )
        if scope.property == "status" and isinstance(condition, TermsFilter):
            statuses = {str(_enum_value(v)) for v in condition.values}
            if ResponseStatusFilter.pending.value in statuses and not responses:
                return True
            return any(status in statuses for _, status, _ in responses)
    raise UnprocessableEntityError(f"prefkit's SQL search engine cannot filter on {scope}")


def _sort_value(row: _Row, scope, descending: bool) -> Any:
    if isinstance(scope, RecordFilterScope):
        values = _as_list(row.record_value(scope.property))
    elif isinstance(scope, MetadataFilterScope):
        values = _as_list(row.metadata.get(scope.metadata_property))
    elif isinstance(scope, SuggestionFilterScope):
        values = _as_list((row.suggestions.get(scope.question) or {}).get(str(scope.property)))
    elif isinstance(scope, ResponseFilterScope):
        responses = _responses_of(row, scope.user)
        if scope.question:
            values = [v for _, _, answer in responses for v in _as_list(_response_value(answer, scope.question))]
            numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
            return sum(numbers) / len(numbers) if numbers else None  # Elasticsearch's nested "avg" mode
        values = [status for _, status, _ in responses]
    else:
        raise UnprocessableEntityError(f"prefkit's SQL search engine cannot sort on {scope}")
    values = [_comparable(_enum_value(v)) for v in values if v is not None]
    if not values:
        return None
    try:
        return max(values) if descending else min(values)
    except TypeError:  # mixed types: compare as text
        return max(map(str, values)) if descending else min(map(str, values))


def _sorted(rows: list[_Row], sort: list, user_id) -> list[_Row]:
    if user_id is not None:
        # A different but fixed order per user, as Elasticsearch's seeded random_score gives.
        seed = f"{user_id}:"
        rows = sorted(rows, key=lambda row: hashlib.sha1((seed + row.id).encode()).digest())
    for order in reversed(sort):
        descending = order.order == SortOrder.desc
        keyed = [(_sort_value(row, order.scope, descending), row) for row in rows]
        present = [pair for pair in keyed if pair[0] is not None]
        missing = [row for value, row in keyed if value is None]
        try:
            present.sort(key=lambda pair: pair[0], reverse=descending)
        except TypeError:
            present.sort(key=lambda pair: str(pair[0]), reverse=descending)
        rows = [row for _, row in present] + missing  # missing values last, in either direction
    return rows


def _texts(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
    elif value is not None:
        yield str(value)


def _terms(q: str) -> list[tuple[bool, str]]:
    """(wanted, term) pairs: words and "quoted phrases", `-term` excludes, `+` and `|` are ignored."""
    try:
        parts = shlex.split(q)
    except ValueError:  # an unbalanced quote: take the words as they are
        parts = q.split()
    terms = []
    for part in parts:
        wanted = not part.startswith("-")
        part = re.sub(r"^[+\-|]+", "", part).strip().lower()
        if part:
            terms.append((wanted, part))
    return terms


_PLAIN = re.compile(r"[A-Za-z0-9 .,:;!?'()\-]+")


def _plain_terms(query: TextQuery | str | None) -> list[str]:
    """Wanted terms that JSON encoding leaves as they are (ASCII, no quotes, backslashes or LIKE wildcards)."""
    if query is None:
        return []
    q = query if isinstance(query, str) else query.q
    return [term for wanted, term in _terms(q) if wanted and _PLAIN.fullmatch(term)]


def _text_matches(fields: dict, query: TextQuery | str) -> bool:
    if isinstance(query, str):
        query = TextQuery(q=query)
    chosen = fields.get(query.field) if query.field else fields
    haystack = "\n".join(_texts(chosen)).lower()
    terms = _terms(query.q)
    return bool(terms) and all((term in haystack) == wanted for wanted, term in terms)


__all__ = ["ENGINE_NAME", "SQLSearchEngine"]
