"""Near-duplicate removal across a file: MinHash signatures over hashed word shingles, banded LSH to
find candidates, signature agreement to confirm; the earliest pair of each group is kept.

scikit-learn's HashingVectorizer does the tokenising and (deterministic, murmur3) hashing; the MinHash
and banding are a few vectorised numpy lines, because nearest-neighbour search over 100k sparse vectors
is quadratic while LSH stays linear.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from prefkit.records import turn_text

_PRIME = np.uint64((1 << 61) - 1)


class DedupFilterConfig(BaseModel):
    """Settings of near-duplicate removal."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Run near-duplicate removal.")
    threshold: float = Field(0.8, gt=0, le=1, description="Estimated Jaccard similarity at which two pairs are duplicates.")
    num_perm: int = Field(64, ge=8, description="MinHash permutations (signature length).")
    bands: int = Field(16, ge=1, description="LSH bands; num_perm must be a multiple of it.")
    shingle_size: int = Field(3, ge=1, description="Words per shingle.")
    context_messages: int = Field(2, ge=0, description="How many of the prompt's last non-system messages count.")
    seed: int = Field(0, description="Seed of the hash permutations (results are deterministic for a seed).")


def pair_document(row: dict, context_messages: int) -> str:
    """The text that identifies a pair: recent context, chosen and rejected, each word tagged by its side,
    so a pair and its swapped twin are not duplicates."""
    context = [m for m in row["prompt"] if m.get("role") != "system"][-context_messages:] if context_messages else []
    parts = []
    for tag, messages in (("p", context), ("c", row["chosen"]), ("r", row["rejected"])):
        parts.extend(f"{tag}{word}" for word in turn_text(messages).lower().split())
    return " ".join(parts)


def find_duplicates(rows: list[dict], config: DedupFilterConfig) -> dict[int, int]:
    """Map index of each near-duplicate row -> index of the row kept in its place (always an earlier one)."""
    if len(rows) < 2:
        return {}
    if config.num_perm % config.bands:
        raise ValueError("dedup.num_perm must be a multiple of dedup.bands")
    from sklearn.feature_extraction.text import HashingVectorizer

    vectorizer = HashingVectorizer(
        n_features=1 << 26, analyzer="word", ngram_range=(config.shingle_size, config.shingle_size),
        token_pattern=r"\S+", lowercase=False, alternate_sign=False, norm=None, binary=True,
        dtype=np.float32,
    )
    docs = [pair_document(row, config.context_messages) for row in rows]
    matrix = vectorizer.transform(docs)
    signatures = _minhash(matrix.indices.astype(np.uint64), matrix.indptr, config)
    return _group(signatures, config)


def _minhash(indices: np.ndarray, indptr: np.ndarray, config: DedupFilterConfig) -> np.ndarray:
    rng = np.random.default_rng(config.seed)
    a = rng.integers(1, 1 << 61, size=config.num_perm, dtype=np.uint64)
    b = rng.integers(0, 1 << 61, size=config.num_perm, dtype=np.uint64)
    n = len(indptr) - 1
    signatures = np.full((n, config.num_perm), np.iinfo(np.uint64).max, dtype=np.uint64)
    nonempty = np.flatnonzero(np.diff(indptr) > 0)
    if len(nonempty) == 0:
        return signatures
    starts = indptr[:-1][nonempty]
    for k in range(config.num_perm):
        # Wrapping uint64 arithmetic is a fine universal hash here; the modulus only mixes the bits further.
        values = (indices * a[k] + b[k]) % _PRIME
        signatures[nonempty, k] = np.minimum.reduceat(values, starts)
    # Documents with no shingle (shorter than shingle_size) get a signature of their own: never duplicates.
    empty = np.flatnonzero(np.diff(indptr) == 0)
    signatures[empty] = np.arange(len(empty), dtype=np.uint64)[:, None] + np.uint64(1)
    return signatures


def _group(signatures: np.ndarray, config: DedupFilterConfig) -> dict[int, int]:
    n, rows_per_band = len(signatures), config.num_perm // config.bands
    parent = np.arange(n)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for band in range(config.bands):
        block = np.ascontiguousarray(signatures[:, band * rows_per_band:(band + 1) * rows_per_band])
        keys = block.view(np.dtype((np.void, block.dtype.itemsize * rows_per_band))).ravel()
        _, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True, return_counts=True)
        shared = counts[inverse] > 1
        for member in np.flatnonzero(shared):
            leader = first[inverse[member]]
            if leader == member:
                continue
            agreement = np.count_nonzero(signatures[member] == signatures[leader]) / config.num_perm
            if agreement >= config.threshold:
                ra, rb = root(int(member)), root(int(leader))
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
    return {i: root(i) for i in range(n) if root(i) != i}
