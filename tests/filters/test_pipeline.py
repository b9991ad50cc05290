"""The whole filter on corpus pairs: real turns kept, corrupted turns dropped (figures printed)."""

import copy

from prefkit.filters.pipeline import FilterConfig, run_filters
from tests.conftest import swapped


def test_real_chosen_kept_and_corrupted_chosen_dropped(corpus_pairs):
    rules_only = FilterConfig.model_validate({"dedup": {"enabled": False}})
    good = copy.deepcopy(corpus_pairs)
    bad = [swapped(p) for p in copy.deepcopy(corpus_pairs)]
    kept_good = len(run_filters(good, rules_only).kept) / len(good)
    dropped_bad = len(run_filters(bad, rules_only).dropped) / len(bad)
    with_dedup = run_filters(copy.deepcopy(corpus_pairs), FilterConfig())
    kept_dedup = len(with_dedup.kept) / len(corpus_pairs)
    print(
        f"\ncorpus pairs: {len(good)}; real-chosen kept {kept_good:.1%} (rules), {kept_dedup:.1%} (rules + dedup: "
        f"{with_dedup.reasons}); corrupted-chosen dropped {dropped_bad:.1%}"
    )
    assert kept_good >= 0.95
    assert dropped_bad >= 0.95
    # The corpus repeats episodes (alfworld.json's recur in alfworld_3prompts.json, as act- and react- prompts):
    # dedup may drop those and only those.
    assert kept_dedup >= 0.9
    by_id = {}
    for row in with_dedup.kept + with_dedup.dropped:
        by_id.setdefault(row["id"], row)
    for row in with_dedup.dropped:
        twin = by_id[row["meta"]["filter"]["duplicate_of"]]
        assert twin["chosen"][0] == row["chosen"][0]


def test_meta_keys_survive_and_filter_adds_its_own(corpus_pairs):
    rows = copy.deepcopy(corpus_pairs[:20])
    for row in rows:
        row["meta"]["custom"] = {"nested": [1, 2]}
        row["extra_top_level"] = "kept"
    result = run_filters(rows, FilterConfig())
    for row in result.kept + result.dropped:
        assert row["meta"]["custom"] == {"nested": [1, 2]} and row["extra_top_level"] == "kept"
        assert "reasons" in row["meta"]["filter"]
