"""PNG histograms of turn lengths and filler rates, chosen vs rejected."""

from __future__ import annotations

from pathlib import Path


def pyplot():
    """matplotlib's pyplot without a display, and without its font-cache notices (a cache it cannot save, on a
    full or read-only home, is its own business, not a line among the user's)."""
    import logging

    import matplotlib

    matplotlib.use("Agg")
    logging.getLogger("matplotlib").setLevel(logging.ERROR)
    import matplotlib.pyplot as plt

    return plt


def write_plots(rows: list[dict], out_dir: str | Path) -> list[Path]:
    """Histograms from `meta.filter.scores` of the given rows; returns the files written."""
    plt = pyplot()

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sides: dict[str, dict[str, list[float]]] = {
        "chosen": {"tokens": [], "filler": []},
        "rejected": {"tokens": [], "filler": []},
    }
    for row in rows:
        scores = (row.get("meta") or {}).get("filter", {}).get("scores")
        if not scores:
            continue
        for side, values in sides.items():
            values["tokens"].append(scores[side]["tokens"])
            values["filler"].append(len(scores[side]["filler"]))
    written = []
    for measure, title, xlabel in (
        ("tokens", "Turn length", "tokens per turn"),
        ("filler", "Filler phrases", "filler phrases per turn"),
    ):
        figure, axis = plt.subplots(figsize=(6, 4))
        for side, color in (("chosen", "tab:green"), ("rejected", "tab:red")):
            axis.hist(sides[side][measure], bins=30, alpha=0.55, label=side, color=color)
        axis.set_title(f"{title}: chosen vs rejected (n={len(sides['chosen'][measure])})")
        axis.set_xlabel(xlabel)
        axis.set_ylabel("pairs")
        axis.legend()
        figure.tight_layout()
        path = out_dir / f"{measure}_hist.png"
        figure.savefig(path, dpi=100)
        plt.close(figure)
        written.append(path)
    return written
