"""Means with 95% bootstrap intervals over tasks, and paired differences between models on the same tasks."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np


def bootstrap(values: np.ndarray, resamples: int, rng: np.random.Generator) -> tuple[float, float]:
    """95% percentile interval of the mean."""
    import numpy as np

    if len(values) == 0:
        return float("nan"), float("nan")
    index = rng.integers(0, len(values), size=(resamples, len(values)))
    means = values[index].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def summarise(
    scored: dict[str, list[dict]], measures: tuple[str, ...], resamples: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """Means with intervals per model, and paired differences of each model against the first and, with three
    or more models (a recipe's DPO variants), of each pair of the later ones."""
    import numpy as np

    rng = np.random.default_rng(seed)
    labels = list(scored)
    out: dict[str, Any] = {"models": {}, "differences": {}}
    for label in labels:
        metrics = {}
        for metric in measures:
            values = np.array([row[metric] for row in scored[label] if row[metric] is not None], dtype=float)
            low, high = bootstrap(values, resamples, rng)
            metrics[metric] = {
                "mean": float(values.mean()) if len(values) else None,
                "low": low,
                "high": high,
                "n": int(len(values)),
            }
        out["models"][label] = metrics
    for first, label in itertools.combinations(labels, 2):
        differences = {}
        for metric in measures:
            pairs = [
                (a[metric], b[metric])
                for a, b in zip(scored[first], scored[label])
                if a[metric] is not None and b[metric] is not None
            ]
            if not pairs:
                continue
            delta = np.array([b - a for a, b in pairs], dtype=float)
            low, high = bootstrap(delta, resamples, rng)
            differences[metric] = {"mean": float(delta.mean()), "low": low, "high": high, "n": len(pairs)}
        out["differences"][f"{label} - {first}"] = differences
    return out


def mean_row(group: list[dict], measures: tuple[str, ...], first: dict[str, Any]) -> dict[str, Any]:
    """Several rows of one task as one: `first` (what names it), then each measure averaged over the rows that
    have it (None when none has), so intervals resample tasks, not correlated samples."""
    row = dict(first)
    for measure in measures:
        values = [item[measure] for item in group if item[measure] is not None]
        row[measure] = sum(values) / len(values) if values else None
    return row
