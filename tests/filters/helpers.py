"""Small builders for filter tests."""

SQL_TURN = "Thought: I need the matching rows.\nAction: Operation\n```sql\nSELECT name FROM t WHERE id = 3;\n```"
CHATTY = "Certainly! I'd be happy to help. Let me look at the table for you. I hope this helps!"


def pair(chosen=SQL_TURN, rejected=CHATTY, prompt=None, fmt="react", **meta):
    """A react pair with plain assistant turns."""
    prompt = prompt or [{"role": "system", "content": "Answer with SQL."}, {"role": "user", "content": "Who has id 3?"}]
    return {
        "prompt": prompt,
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
        "meta": {"format": fmt, **meta},
    }


def reasons_of(rows, **config):
    """Run the rule filters (no dedup) and return each row's reasons."""
    from prefkit.filters.pipeline import FilterConfig, run_filters

    cfg = FilterConfig.model_validate({"dedup": {"enabled": False}, **config})
    run_filters(rows, cfg)
    return [row["meta"]["filter"]["reasons"] for row in rows]
