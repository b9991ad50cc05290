"""Near-duplicate removal across a file: MinHash signatures over hashed word shingles, banded LSH to
find candidates, signature agreement to confirm; the earliest pair of each group is kept.

scikit-learn's HashingVectorizer does the tokenising and (deterministic, murmur3) hashing; the MinHash
and banding are a few vectorised numpy lines, because nearest-neighbour search over 100k sparse vectors
is quadratic while LSH stays linear.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

from prefkit.records import turn_text

if TYPE_CHECKING:
    import numpy as np

_PRIME = (1 << 61) - 1


class DedupFilterConfig(BaseModel):
    """Settings of near-duplicate removal."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Run near-duplicate removal.")
    threshold: float = Field(
        0.8,
        gt=0,
        le=1,
        description="Estimated Jaccard similarity that the context, chosen AND rejected of two pairs must each reach.",
    )
    num_perm: int = Field(32, ge=8, description="MinHash permutations per part (context, chosen, rejected).")
    bands: int = Field(8, ge=1, description="LSH bands per part; num_perm must be a multiple of it.")
    shingle_size: int = Field(3, ge=1, description="Words per shingle.")
    context_messages: int = Field(2, ge=0, description="How many of the prompt's last non-system messages count.")

    @model_validator(mode="after")
    def _bands_divide_permutations(self) -> DedupFilterConfig:
        if self.num_perm % self.bands:
            raise ValueError(f"num_perm ({self.num_perm}) must be a multiple of bands ({self.bands})")
        return self

    seed: int = Field(0, description="Seed of the hash permutations (results are deterministic for a seed).")


def pair_parts(row: dict, context_messages: int) -> tuple[str, str, str]:
    """The texts that identify a pair: its task statement (first non-system message) and recent context, chosen,
    rejected; each start-padded so that short turns have shingles too."""
    history = [m for m in row["prompt"] if m.get("role") != "system"]
    recent = history[1:][-context_messages:] if context_messages else []
    context = history[:1] + recent
    return tuple(f"s0 s0 {turn_text(messages).lower()}" for messages in (context, row["chosen"], row["rejected"]))


def find_duplicates(rows: list[dict], config: DedupFilterConfig) -> dict[int, int]:
    """Map index of each near-duplicate row -> index of the row kept in its place (always an earlier one).

    Two pairs are duplicates when their contexts, their chosen turns and their rejected turns are each
    similar: the same prompt with another answer is a different pair, and so is a pair with its sides swapped.
    """
    if len(rows) < 2:
        return {}
    import numpy as np
    from sklearn.feature_extraction.text import HashingVectorizer

    vectorizer = HashingVectorizer(
        n_features=1 << 26,
        analyzer="word",
        ngram_range=(config.shingle_size, config.shingle_size),
        token_pattern=r"(?u)\b\w+\b",
        lowercase=False,
        alternate_sign=False,
        norm=None,
        binary=True,
        dtype=np.float32,
    )
    parts = list(zip(*(pair_parts(row, config.context_messages) for row in rows)))
    signatures = []
    for number, texts in enumerate(parts):
        matrix = vectorizer.transform(texts)
        signatures.append(_minhash(matrix.indices.astype(np.uint64), matrix.indptr, config, seed=config.seed + number))
    return _group(signatures, config)


def _minhash(indices: np.ndarray, indptr: np.ndarray, config: DedupFilterConfig, seed: int) -> np.ndarray:
    import numpy as np

    prime = np.uint64(_PRIME)
    rng = np.random.default_rng(seed)
    a = rng.integers(1, 1 << 61, size=config.num_perm, dtype=np.uint64)
    b = rng.integers(0, 1 << 61, size=config.num_perm, dtype=np.uint64)
    n = len(indptr) - 1
    signatures = np.zeros((n, config.num_perm), dtype=np.uint64)
    starts = indptr[:-1]
    for k in range(config.num_perm):
        # Wrapping uint64 arithmetic is a fine universal hash here; the modulus only mixes the bits further.
        values = (indices * a[k] + b[k]) % prime
        signatures[:, k] = np.minimum.reduceat(values, starts)
    return signatures


def _group(signatures: list[np.ndarray], config: DedupFilterConfig) -> dict[int, int]:
    import numpy as np

    context, chosen, rejected = signatures
    n, rows_per_band = len(chosen), config.num_perm // config.bands
    parent = np.arange(n)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def similar(i: int, j: int) -> bool:
        return all(np.count_nonzero(sig[i] == sig[j]) >= config.threshold * config.num_perm for sig in signatures)

    # Candidates share a band of chosen or of rejected; each is confirmed on all three parts.
    for part in (chosen, rejected):
        for band in range(config.bands):
            block = np.ascontiguousarray(part[:, band * rows_per_band : (band + 1) * rows_per_band])
            keys = block.view(np.dtype((np.void, block.dtype.itemsize * rows_per_band))).ravel()
            _, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True, return_counts=True)
            for member in np.flatnonzero(counts[inverse] > 1):
                leader = int(first[inverse[member]])
                if leader != member and similar(int(member), leader):
                    ra, rb = root(int(member)), root(leader)
                    if ra != rb:
                        parent[max(ra, rb)] = min(ra, rb)
    return {i: root(i) for i in range(n) if root(i) != i}
