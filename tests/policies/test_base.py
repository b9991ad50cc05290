"""The batcher between episodes and a policy: requests waiting at the same moment go together, at most the
policy's batch size at once; a failed batch fails each of its episodes."""

import asyncio

from prefkit.policies.base import Batcher, Reply, TurnRequest


class Recording:
    label = "recording"

    def __init__(self, batch_size: int, fail: bool = False):
        self.batch_size, self.fail, self.batches = batch_size, fail, []

    async def reply(self, requests):
        self.batches.append([request.task_id for request in requests])
        await asyncio.sleep(0.01)
        if self.fail:
            raise RuntimeError("out of memory")
        return [Reply({"role": "assistant", "content": request.task_id}) for request in requests]


def ask_all(policy, count: int) -> list:
    async def go():
        async with Batcher(policy) as ask:
            requests = [TurnRequest(f"t{i}", 0, 0, []) for i in range(count)]
            return await asyncio.gather(*(ask(r) for r in requests), return_exceptions=True)

    return asyncio.run(go())


def test_waiting_requests_go_together_up_to_the_batch_size_in_order():
    policy = Recording(batch_size=4)
    replies = ask_all(policy, 10)
    assert [reply.message["content"] for reply in replies] == [f"t{i}" for i in range(10)]
    assert [len(batch) for batch in policy.batches] == [4, 4, 2]
    assert sum(policy.batches, []) == [f"t{i}" for i in range(10)]


def test_a_server_policy_answers_each_request_alone():
    policy = Recording(batch_size=1)
    ask_all(policy, 3)
    assert policy.batches == [["t0"], ["t1"], ["t2"]]


def test_a_failed_batch_fails_every_episode_waiting_on_it():
    replies = ask_all(Recording(batch_size=8, fail=True), 3)
    assert all(isinstance(reply, RuntimeError) for reply in replies)


def test_every_policy_keeps_the_protocol(tmp_path):
    from prefkit.policies.base import Policy, PolicySettings
    from prefkit.policies.local import LocalPolicy
    from prefkit.policies.replay import ReplayPolicy
    from prefkit.policies.spec import PolicySpec
    from prefkit.policies.teacher import TeacherPolicy

    replay = tmp_path / "r.jsonl"
    replay.write_text('{"task_id": "a", "turns": ["x"]}\n')
    policies = [
        ReplayPolicy(PolicySpec.parse(f"replay:{replay}"), ["a"]),
        TeacherPolicy(PolicySpec.parse("openai:m@http://127.0.0.1:9/v1"), PolicySettings(), tmp_path / "c.sqlite"),
        LocalPolicy(PolicySpec.parse(str(tmp_path)), PolicySettings(batch_size=8)),
    ]
    assert all(isinstance(policy, Policy) for policy in policies)
    assert [policy.batch_size for policy in policies] == [1, 1, 8]
    assert not isinstance(Recording(1), Policy)  # no episodes(), no async with: not a policy
