"""The evaluation report: report.json, report.md (the side-by-side table with intervals and differences) and
chart.png."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefkit.envs.registry import config_class
from prefkit.jsonl import write_json

# The measures of each kind of evaluation, in the order the tables show them: turns.py and episodes.py compute
# these. format_valid is both answers of the parse at once: the benchmark's parser accepts the turn (accepted)
# and the turn keeps prefkit's stricter rules (disciplined), which is what a chosen turn must be. The
# disciplined rate is taken over the accepted turns (a rejected turn has nothing the discipline rules judge).
TURN_RATES = ("format_valid", "accepted", "disciplined", "filler", "repeated_action", "reference_agreement")
TURN_MEASURES = (*TURN_RATES, "thought_tokens")
# With an environment: one row an episode, its turns' measures averaged over the episode.
EPISODE_RATES = ("success", "format_valid", "accepted", "disciplined", "filler")
EPISODE_MEASURES = (*EPISODE_RATES, "thought_tokens", "turns", "tokens")

LABELS = {
    "format_valid": "format-valid rate",
    "accepted": "accepted by the benchmark",
    "disciplined": "disciplined (of accepted)",
    "filler": "filler rate",
    "repeated_action": "repeated-action rate",
    "reference_agreement": "agreement with reference action",
    "thought_tokens": "mean thought tokens",
    "success": "task success rate",
    "turns": "turns per episode",
    "tokens": "completion tokens per episode",
}


def write_report(out_dir: Path, report: dict[str, Any]) -> None:
    """report.json, report.md and chart.png."""
    write_json(out_dir / "report.json", report)
    (out_dir / "report.md").write_text(markdown(report), encoding="utf-8")
    chart(report, out_dir / "chart.png")


def _cell(entry: dict) -> str:
    if entry.get("mean") is None:
        return "-"
    return f"{entry['mean']:.3f} [{entry['low']:.3f}, {entry['high']:.3f}]"


def markdown(report: dict[str, Any]) -> str:
    """The side-by-side table, with differences, as Markdown (with three or more models the paired
    differences get a table of their own: a row per pair)."""
    labels = list(report["models"])
    diffs = list(report["differences"])
    inline = diffs if len(diffs) <= 1 else []
    measures = tuple(report.get("measures") or TURN_MEASURES)
    where = (
        f"environment: `{report['env']}` on `{report['engine']}`, whole episodes, each turn's measures averaged "
        "over its episode"
        if report.get("env")
        else f"format: `{report['format']}`"
    )
    lines = [
        f"Tasks: {report['tasks']} ({report.get('samples_per_task', 1)} samples each, averaged per task); "
        f"{where}; sampling temperature {report['temperature']}; "
        "mean [95% bootstrap interval over tasks]. A turn is format-valid when the benchmark's own parser "
        "accepts it and it is disciplined (one action, nothing after it, canonical labels).",
        "",
        "| measure | " + " | ".join(labels) + "".join(f" | {d}" for d in inline) + " |",
        "|---" * (1 + len(labels) + len(inline)) + "|",
    ]
    for metric in measures:
        cells = [_cell(report["models"][label][metric]) for label in labels]
        cells += [_cell(report["differences"][d].get(metric, {})) for d in inline]
        lines.append(f"| {LABELS[metric]} | " + " | ".join(cells) + " |")
    if not inline and diffs:
        lines += ["", "Paired differences (the same tasks, model minus model):", ""]
        lines.append("| difference | " + " | ".join(LABELS[m] for m in measures) + " |")
        lines.append("|---" * (1 + len(measures)) + "|")
        for d in diffs:
            cells = " | ".join(_cell(report["differences"][d].get(m, {})) for m in measures)
            lines.append(f"| {d} | {cells} |")
    env = config_class(report["env"]) if report.get("env") else None
    if env is not None and report.get(env.metrics_key):
        own = report[env.metrics_key]
        names = list(next(iter(own.values())))
        lines += ["", f"{env.benchmark}'s own metrics (all episodes, {env.metrics_how}):", ""]
        lines.append("| metric | " + " | ".join(labels) + " |")
        lines.append("|---" * (1 + len(labels)) + "|")
        for name in names:
            values = " | ".join(f"{own[label][name]:.3f}" for label in labels)
            lines.append(f"| {name} | {values} |")
    return "\n".join(lines) + "\n"


def chart(report: dict[str, Any], path: Path) -> None:
    """Grouped bars with 95% intervals for the rates, and thought tokens on their own axis."""
    from prefkit.filters.plots import pyplot

    plt = pyplot()

    labels = list(report["models"])
    rate_metrics = EPISODE_RATES if report.get("env") else TURN_RATES
    figure, (rates, tokens) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [3, 1]})
    width = 0.8 / len(labels)
    for number, label in enumerate(labels):
        metrics = report["models"][label]
        means = [metrics[m]["mean"] if metrics[m]["mean"] is not None else 0 for m in rate_metrics]
        errors = [
            [
                max(0, mean - (metrics[m]["low"] if metrics[m]["mean"] is not None else 0))
                for m, mean in zip(rate_metrics, means)
            ],
            [
                max(0, (metrics[m]["high"] if metrics[m]["mean"] is not None else 0) - mean)
                for m, mean in zip(rate_metrics, means)
            ],
        ]
        positions = [i + number * width for i in range(len(rate_metrics))]
        rates.bar(positions, means, width, yerr=errors, capsize=3, label=label)
        thought = metrics["thought_tokens"]
        tokens.bar(
            [number],
            [thought["mean"] or 0],
            0.6,
            yerr=[
                [max(0, (thought["mean"] or 0) - thought["low"])],
                [max(0, thought["high"] - (thought["mean"] or 0))],
            ],
            capsize=3,
        )
    rates.set_xticks([i + width * (len(labels) - 1) / 2 for i in range(len(rate_metrics))])
    short = {"accepted": "accepted", "disciplined": "disciplined", "repeated_action": "repeated action"}
    short["success"] = "task success"
    short |= {"format_valid": "format-valid", "filler": "filler", "reference_agreement": "agrees with ref."}
    rates.set_xticklabels([short[m] for m in rate_metrics], rotation=15)
    rates.set_ylim(0, 1.05)
    rates.set_title("rates (95% bootstrap intervals)")
    rates.legend()
    tokens.set_xticks(range(len(labels)))
    tokens.set_xticklabels(labels, rotation=20)
    tokens.set_title("mean thought tokens")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _interval(measure: dict[str, Any]) -> str:
    if measure.get("mean") is None:
        return "-"
    return f"{measure['mean']:.3f} [{measure['low']:.3f}, {measure['high']:.3f}]"


def model_rows(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """With three or more models (DPO variants), one run-table row a model: its rates with 95% intervals."""
    if len(report["models"]) <= 2:
        return {}
    return {
        label: {"format-valid": _interval(m["format_valid"]), "filler": _interval(m["filler"])}
        for label, m in report["models"].items()
    }
