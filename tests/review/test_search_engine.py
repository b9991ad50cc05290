"""annotation/search_engine.py through Argilla's own API: search, filters, sorting, progress and metrics
answered from the SQL database (there is no Elasticsearch here)."""

from __future__ import annotations

from collections import Counter

import pytest

from prefkit.records import turn_text
from prefkit.review.argilla_queue import push

pytestmark = pytest.mark.slow
DATASET = "search-engine"


@pytest.fixture(scope="module")
def searchable(owner, connection, annotators, pairs):
    """30 pushed pairs, 3 of them answered by ann1; (dataset id, records by pair id, pushed rows)."""
    from argilla._models import UserResponseModel

    rows = pairs[100:130]
    push(rows, connection, DATASET)
    dataset = owner.datasets(name=DATASET, workspace="prefkit")
    records = {record.id: record for record in dataset.records(with_suggestions=True)}
    ann1 = annotators["ann1"]
    for row in rows[:3]:
        ann1.api.records.create_record_response(
            records[row["id"]]._server_id,
            UserResponseModel(values={"preference": {"value": "a_better"}}, status="submitted", user_id=ann1.me.id),
        )
    return dataset.id, records, rows


def _search(client, dataset_id, body: dict, me: bool = False, **params) -> tuple[list[str], int]:
    path = f"/api/v1/{'me/' if me else ''}datasets/{dataset_id}/records/search"
    response = client.api.http_client.post(path, json=body, params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    data = response.json()
    return [item["record"]["external_id"] for item in data["items"]], data["total"]


def _terms(scope: dict, *values) -> dict:
    return {"filters": {"and": [{"type": "terms", "scope": scope, "values": list(values)}]}}


def test_text_query_needs_every_word_case_insensitively(owner, searchable):
    dataset_id, records, rows = searchable
    word = rows[5]["prompt"][-1]["content"].split()[3]

    def text_of(record) -> str:
        prompt = " ".join(message.content for message in record.fields["prompt"])
        return f"{prompt}\n{record.fields['response_a']}\n{record.fields['response_b']}".lower()

    expected = {
        pair_id for pair_id, record in records.items() if word.lower() in text_of(record) and "think" in text_of(record)
    }
    found, total = _search(owner, dataset_id, {"query": {"text": {"q": f"{word.upper()} think"}}})
    assert set(found) == expected and total == len(expected) and rows[5]["id"] in expected
    only_a, _ = _search(owner, dataset_id, {"query": {"text": {"q": word, "field": "response_a"}}})
    assert set(only_a) == {
        pair_id for pair_id, record in records.items() if word.lower() in record.fields["response_a"].lower()
    }


def test_metadata_terms_and_range_filters_and_sort(owner, searchable):
    dataset_id, records, rows = searchable
    domains = Counter(row["meta"]["domain"] for row in rows)
    domain, count = domains.most_common(1)[0]
    found, total = _search(owner, dataset_id, _terms({"entity": "metadata", "metadata_property": "domain"}, domain))
    assert total == count and all(records[pair_id].metadata["domain"] == domain for pair_id in found)

    lengths = sorted(record.metadata["a_chars"] for record in records.values())
    low, high = lengths[5], lengths[20]
    body = {
        "filters": {
            "and": [
                {
                    "type": "range",
                    "scope": {"entity": "metadata", "metadata_property": "a_chars"},
                    "ge": low,
                    "le": high,
                }
            ]
        },
        "sort": [{"scope": {"entity": "metadata", "metadata_property": "a_chars"}, "order": "desc"}],
    }
    found, total = _search(owner, dataset_id, body)
    got = [records[pair_id].metadata["a_chars"] for pair_id in found]
    assert got == sorted(got, reverse=True) and total == sum(low <= n <= high for n in lengths)
    assert all(low <= n <= high for n in got)


def test_suggestion_filters_on_value_and_score(owner, searchable):
    dataset_id, records, _ = searchable
    expected = {pair_id for pair_id, record in records.items() if record.suggestions["preference"].value == "b_better"}
    found, total = _search(
        owner, dataset_id, _terms({"entity": "suggestion", "question": "preference", "property": "value"}, "b_better")
    )
    assert set(found) == expected and total == len(expected) > 0
    body = {
        "filters": {
            "and": [
                {
                    "type": "range",
                    "scope": {"entity": "suggestion", "question": "preference", "property": "score"},
                    "ge": 0.9,
                    "le": 1.0,
                }
            ]
        }
    }
    found, _ = _search(owner, dataset_id, body)
    assert set(found) == {
        pair_id for pair_id, record in records.items() if record.suggestions["preference"].score >= 0.9
    }


def test_response_status_filters_per_user_and_record_status(owner, annotators, searchable):
    dataset_id, records, rows = searchable
    ann1, ann2 = annotators["ann1"], annotators["ann2"]
    answered = {row["id"] for row in rows[:3]}
    status_scope = {"entity": "response", "property": "status"}
    found, total = _search(ann1, dataset_id, _terms(status_scope, "submitted"), me=True)
    assert set(found) == answered and total == 3
    found, total = _search(ann1, dataset_id, _terms(status_scope, "pending"), me=True)
    assert total == 27 and not answered & set(found)
    _, total = _search(ann2, dataset_id, _terms(status_scope, "pending"), me=True)
    assert total == 30
    found, _ = _search(owner, dataset_id, _terms({"entity": "response", "question": "preference"}, "a_better"))
    assert set(found) == answered
    found, _ = _search(owner, dataset_id, _terms({"entity": "record", "property": "status"}, "completed"))
    assert set(found) == answered  # one answer per pair completes it


def test_paging_is_stable_and_each_user_has_a_fixed_order(owner, annotators, searchable):
    dataset_id, _, _ = searchable
    everything, total = _search(annotators["ann2"], dataset_id, {}, me=True)
    pages = []
    for offset in range(0, total, 7):
        page, page_total = _search(annotators["ann2"], dataset_id, {}, me=True, offset=offset, limit=7)
        assert page_total == total
        pages += page
    assert pages == everything and len(set(everything)) == total == 30
    again, _ = _search(annotators["ann2"], dataset_id, {}, me=True)
    assert again == everything
    other, _ = _search(annotators["ann3"], dataset_id, {}, me=True)
    assert sorted(other) == sorted(everything) and other != everything


def test_progress_and_metrics_come_from_the_database(owner, annotators, searchable):
    dataset_id, records, rows = searchable
    http = owner.api.http_client
    progress = http.get(f"/api/v1/datasets/{dataset_id}/progress").json()
    assert (progress["total"], progress["completed"], progress["pending"]) == (30, 3, 27)
    mine = annotators["ann1"].api.http_client.get(f"/api/v1/me/datasets/{dataset_id}/metrics").json()
    assert (mine["responses"]["submitted"], mine["responses"]["pending"]) == (3, 27)
    metadata = owner.datasets(name=DATASET, workspace="prefkit").settings.metadata
    properties = {name: metadata[name].id for name in ("domain", "a_chars")}
    domains = http.get(f"/api/v1/metadata-properties/{properties['domain']}/metrics").json()
    assert {v["term"]: v["count"] for v in domains["values"]} == dict(Counter(r["meta"]["domain"] for r in rows))
    lengths = http.get(f"/api/v1/metadata-properties/{properties['a_chars']}/metrics").json()
    values = [record.metadata["a_chars"] for record in records.values()]
    assert (lengths["min"], lengths["max"]) == (min(values), max(values))
    assert values == [
        len(turn_text(r["chosen" if records[r["id"]].metadata["order"] == "chosen-first" else "rejected"]))
        for r in rows
    ]


def test_vector_search_says_it_is_not_supported(owner):
    import argilla as rg

    settings = rg.Settings(
        fields=[rg.TextField("text")],
        questions=[rg.LabelQuestion("label", labels=["x", "y"])],
        vectors=[rg.VectorField("embedding", dimensions=3)],
    )
    dataset = rg.Dataset(name="vectors", workspace="prefkit", settings=settings, client=owner).create()
    dataset.records.log([rg.Record(fields={"text": "hello"}, vectors={"embedding": [0.1, 0.2, 0.3]})])
    response = owner.api.http_client.post(
        f"/api/v1/datasets/{dataset.id}/records/search",
        json={"query": {"vector": {"name": "embedding", "value": [0.1, 0.2, 0.3]}}},
    )
    assert response.status_code == 422 and "not supported" in response.text
