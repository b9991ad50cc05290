"""The local policy: a checkpoint or adapter folder (transformers, an adapter on the base model it names),
generating for the contexts of one batch at once on a thread of its own, each context cut to its last
`max_prompt_tokens` tokens."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from prefkit.errors import InputError
from prefkit.policies.base import PolicySettings, Reply, TurnRequest, every_sample
from prefkit.policies.spec import PolicySpec


class LocalPolicy:
    """A local model; `reply` generates for its requests `batch_size` contexts at a time (in a rollout the
    batcher hands it the episodes waiting at one moment)."""

    def __init__(self, spec: PolicySpec, settings: PolicySettings):
        self.target, self.settings = spec.target, settings
        self.label = spec.label
        self.batch_size = settings.batch_size
        self.model = self.tokenizer = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="generate")

    def episodes(self, task_ids: list[str], samples: int) -> list[tuple[str, int]]:
        """Every task `samples` times."""
        return every_sample(task_ids, samples)

    async def __aenter__(self) -> LocalPolicy:
        import torch

        loop = asyncio.get_running_loop()
        self.model, self.tokenizer = await loop.run_in_executor(self._pool, load_local, self.target)
        torch.manual_seed(self.settings.seed)
        return self

    async def __aexit__(self, *exc) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def reply(self, requests: Sequence[TurnRequest]) -> list[Reply]:
        """One generated turn a request, `batch_size` contexts a `generate` call, in order."""
        loop = asyncio.get_running_loop()
        replies = []
        for start in range(0, len(requests), self.batch_size):
            usage: list[tuple[int, int]] = []
            turns = await loop.run_in_executor(
                self._pool,
                generate_turns,
                self.model,
                self.tokenizer,
                [list(request.messages) for request in requests[start : start + self.batch_size]],
                self.settings.max_tokens,
                self.settings.temperature,
                self.settings.max_prompt_tokens,
                usage,
            )
            replies += [Reply(turn, prompt_tokens=p, completion_tokens=c) for turn, (p, c) in zip(turns, usage)]
        return replies


def load_local(target: str):
    """(model, tokenizer) of a checkpoint folder, or of an adapter folder on its base model; left padding."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(target)
    if (path / "adapter_config.json").exists():
        from peft import PeftModel

        base = base_of(path)
        try:
            base_model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        except OSError:
            raise InputError(f"cannot load the base model {base!r} this adapter names", target) from None
        model = PeftModel.from_pretrained(base_model, str(path))
    else:
        try:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
        except (OSError, ValueError) as error:
            raise InputError(
                f"not a model checkpoint or adapter folder ({str(error).splitlines()[0][:120]})", target
            ) from None
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.eval()
    return model, tokenizer


def generate_turns(
    model,
    tokenizer,
    conversations: list[list[dict]],
    max_new_tokens: int,
    temperature: float,
    max_prompt_tokens: int,
    usage: list[tuple[int, int]] | None = None,
) -> list[dict]:
    """One generated assistant message per conversation, in one batch (each context cut to its last
    `max_prompt_tokens` tokens); `usage` gets (prompt tokens, generated tokens) of each."""
    import torch

    turns = []
    if conversations:
        prompts = []
        for messages in conversations:
            ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
            ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
            prompts.append(ids[-max_prompt_tokens:])
        width = max(len(ids) for ids in prompts)
        input_ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(ids)) + ids for ids in prompts])
        attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in prompts])
        with torch.no_grad():
            output = model.generate(
                input_ids=input_ids,
                attention_mask=attention,
                max_new_tokens=max_new_tokens,
                do_sample=temperature > 0,
                temperature=temperature if temperature > 0 else None,
                top_p=None,
                top_k=None,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        for ids, row in zip(prompts, output[:, width:]):
            turns.append({"role": "assistant", "content": tokenizer.decode(row, skip_special_tokens=True).strip()})
            if usage is not None:
                usage.append((len(ids), int((row != tokenizer.pad_token_id).sum())))
    return turns


def base_of(adapter: Path) -> str:
    """The base model a LoRA adapter folder was trained on."""
    import json

    config = Path(adapter) / "adapter_config.json"
    try:
        return json.loads(config.read_text())["base_model_name_or_path"]
    except (OSError, ValueError, KeyError):
        raise InputError("not a LoRA adapter folder (no readable adapter_config.json)", str(adapter)) from None
