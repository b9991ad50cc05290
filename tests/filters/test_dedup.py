"""Near-duplicate removal: one representative kept (the earliest), deterministic, swap-aware."""

import copy

from prefkit.filters.dedup import DedupFilterConfig, find_duplicates
from prefkit.filters.pipeline import FilterConfig, run_filters
from tests.filters.helpers import pair


def rows():
    base = [
        pair(
            chosen=f"Thought: look up person {i} in the staff table by id.\nAction: Operation\n```sql\n"
            f"SELECT name FROM staff WHERE id = {i};\n```",
            rejected=f"Certainly! I'd be happy to help you find person number {i} in the table.",
            prompt=[{"role": "user", "content": f"Who is staff member {i}? Answer from the staff table."}],
        )
        for i in range(30)
    ]
    near = copy.deepcopy(base[5])
    # Case, punctuation and spacing changes only: the same pair for training purposes.
    near["rejected"][0]["content"] = near["rejected"][0]["content"].replace("Certainly! I'd", "certainly, i'd  ")
    return base, near


def test_near_duplicate_is_dropped_and_points_to_the_kept_pair():
    base, near = rows()
    data = base + [near]
    result = run_filters(data, FilterConfig())
    assert len(result.kept) == 30
    dropped = result.dropped[0]
    assert dropped["meta"]["filter"]["reasons"] == ["dedup.near_duplicate"]
    assert dropped["meta"]["filter"]["duplicate_of"] == base[5]["id"]


def test_distinct_pairs_are_not_duplicates():
    base, _ = rows()
    assert find_duplicates(base, DedupFilterConfig()) == {}


def test_swapped_pair_is_not_a_duplicate():
    base, _ = rows()
    twin = {"prompt": base[0]["prompt"], "chosen": base[0]["rejected"], "rejected": base[0]["chosen"], "meta": {}}
    assert find_duplicates([base[0], twin], DedupFilterConfig()) == {}


def test_result_is_deterministic_and_keeps_the_first():
    base, near = rows()
    first = find_duplicates(base + [near, copy.deepcopy(near)], DedupFilterConfig())
    second = find_duplicates(base + [near, copy.deepcopy(near)], DedupFilterConfig())
    assert first == second == {30: 5, 31: 5}


def test_exact_duplicate_ids():
    base, _ = rows()
    data = [copy.deepcopy(base[0]), copy.deepcopy(base[0])]
    result = run_filters(data, FilterConfig())
    assert [r["meta"]["filter"]["reasons"] for r in result.dropped] == [["dedup.exact_duplicate"]]
