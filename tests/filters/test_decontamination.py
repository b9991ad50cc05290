"""Decontamination: pairs whose prompt overlaps an evaluation set are dropped."""

import json

from tests.filters.helpers import pair, reasons_of

QUESTION = "What is the total number of goals scored by FK Trakai in the 2010 football standings table?"


def test_prompt_overlapping_eval_set_is_dropped(tmp_path):
    eval_file = tmp_path / "eval.jsonl"
    eval_file.write_text(json.dumps({"id": "e1", "messages": [{"role": "user", "content": QUESTION}]}) + "\n")
    contaminated = pair(prompt=[{"role": "system", "content": "x"}, {"role": "user", "content": QUESTION}])
    clean = pair(prompt=[{"role": "user", "content": "How many wins did Ballarat FL have in the season table?"}])
    reasons = reasons_of([contaminated, clean], decontamination={"eval_sets": [str(eval_file)]})
    assert reasons == [["decontamination.eval_overlap"], []]
