"""sample-rank: n samples (one request with n, or one request each), rule ranking, judge, margin."""

import json

from prefkit.generate import GenerateConfig, Generator
from prefkit.testing.standin import Behaviour, StandinServer

TASK = {
    "id": "t1",
    "format": "react",
    "domain": "dbbench",
    "messages": [{"role": "system", "content": "Use SQL."}, {"role": "user", "content": "How many rows?"}],
}
GOOD = "Thought: count them.\nAction: Operation\n```sql\nSELECT COUNT(*) FROM t;\n```"
CHATTY = "Certainly! I'd be happy to help. I hope this helps!"


def responder(body, index):
    if body["messages"][0]["content"].startswith("You compare"):
        prompt = body["messages"][0]["content"]
        return "A" if prompt.index(GOOD) < prompt.index("Candidate B") else "B"
    return [GOOD, CHATTY, GOOD.replace("COUNT(*)", "*"), "Action: Operation"][index % 4]


def generate(tmp_path, behaviour, **sample_rank):
    with StandinServer(behaviour) as server:
        config = GenerateConfig.model_validate(
            {
                "strategy": "sample-rank",
                "teacher": {"base_url": server.url, "model": "teacher-model", "supports_n": behaviour.supports_n},
                "sample_rank": {"n": 4, **sample_rank},
            }
        )
        summary = Generator(config, tmp_path / "p.jsonl").run([TASK])
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    return summary, rows, server


def test_best_valid_is_chosen_and_worst_rejected_in_one_request_with_n(tmp_path):
    summary, rows, server = generate(tmp_path, Behaviour(responder=responder))
    assert summary.pairs == 1 and server.stats.outcomes["ok"] == 1
    assert rows[0]["chosen"][0]["content"] in (GOOD, GOOD.replace("COUNT(*)", "*"))
    assert rows[0]["rejected"][0]["content"] in (CHATTY, "Action: Operation")
    assert rows[0]["meta"]["strategy"] == "sample-rank" and len(rows[0]["meta"]["scores"]["samples"]) == 4


def test_separate_requests_when_server_lacks_n(tmp_path):
    calls = []

    def alternating(body, index):
        calls.append(body)
        return GOOD if len(calls) % 2 else CHATTY

    summary, rows, server = generate(tmp_path, Behaviour(responder=alternating, supports_n=False))
    assert summary.pairs == 1 and server.stats.outcomes["ok"] == 4
    assert all("n" not in body for body in calls)


def test_judge_compares_both_orders(tmp_path):
    summary, rows, server = generate(tmp_path, Behaviour(responder=responder), judge=True)
    judge_calls = [b for b in server.stats.bodies if b["messages"][0]["content"].startswith("You compare")]
    assert summary.pairs == 1 and len(judge_calls) == 2  # the two valid samples, compared A/B and B/A
    assert rows[0]["chosen"][0]["content"] == GOOD


def test_pair_below_margin_is_skipped_and_recorded(tmp_path):
    summary, rows, server = generate(tmp_path, Behaviour(responder=lambda body, i: GOOD), min_margin=1.0)
    assert summary.pairs == 0 and summary.skip_reasons == {"below margin": 1}
    assert json.loads((tmp_path / "p.skipped.jsonl").read_text())["task_id"] == "t1"


def test_sampling_settings_and_extra_body_reach_the_server(tmp_path):
    with StandinServer(Behaviour(responder=responder)) as server:
        config = GenerateConfig.model_validate(
            {
                "strategy": "sample-rank",
                "teacher": {
                    "base_url": server.url,
                    "model": "teacher-model",
                    "temperature": 0.9,
                    "max_tokens": 64,
                    "extra_body": {"top_k": 20},
                },
                "sample_rank": {"n": 4},
            }
        )
        Generator(config, tmp_path / "p.jsonl").run([TASK])
    body = server.stats.bodies[0]
    assert body["temperature"] == 0.9 and body["max_tokens"] == 64 and body["top_k"] == 20 and body["n"] == 4
    assert "seed" not in body  # unset settings are not sent
