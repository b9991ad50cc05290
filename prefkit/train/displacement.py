"""Likelihood displacement: DPO can push the policy's probability of the *chosen* turns down along with the
rejected ones (Razin et al. 2024, "Unintentional Unalignment"), while its own metrics look perfect (reward
accuracy 1.0, a growing margin). prefkit watches the change of the chosen turns' log-probability against the
reference, per token, at every evaluation, and after training samples a few prompts to see whether the model
still writes text.

What it reads is what TRL's DPOTrainer logs (trl/trainer/dpo_trainer.py, 1.16: `rewards/chosen` is
beta * (policy - reference) log-probability of the chosen completion, summed over its tokens, averaged over
the batch); dividing by beta and by the mean completion length of the same split gives nats per token."""

from __future__ import annotations

import functools
import shutil
import unicodedata
from pathlib import Path
from typing import Any

from prefkit.errors import TrainingDiverged

ADVICE = "add the SFT term (loss_type: [sigmoid, sft]), lower learning_rate or raise beta"


def change_per_token(logs: dict[str, Any], prefix: str, beta: float, tokens: tuple[float, float]) -> tuple | None:
    """(chosen, rejected) log-probability change against the reference, in nats per token, from one log entry
    (None when it holds no rewards)."""
    chosen, rejected = logs.get(f"{prefix}rewards/chosen"), logs.get(f"{prefix}rewards/rejected")
    if not isinstance(chosen, (int, float)) or not isinstance(rejected, (int, float)) or not beta:
        return None
    return chosen / beta / max(tokens[0], 1.0), rejected / beta / max(tokens[1], 1.0)


def drop_checkpoints_after(output_dir: Path, step: int) -> list[str]:
    """Remove the checkpoints saved after `step` (made by a displaced model); returns the kept ones."""
    kept = []
    numbered = [(f, f.name.removeprefix("checkpoint-")) for f in Path(output_dir).glob("checkpoint-*")]
    for folder, number in sorted(((f, int(n)) for f, n in numbered if n.isdigit() and f.is_dir()), key=lambda x: x[1]):
        if number > step:
            shutil.rmtree(folder, ignore_errors=True)
        else:
            kept.append(folder.name)
    return kept


@functools.cache
def guard_class() -> type:
    """The TrainerCallback, built on first use (transformers is imported only when something trains)."""
    from transformers import TrainerCallback

    class DisplacementGuard(TrainerCallback):
        """Records the chosen/rejected change at each evaluation (on training logs when there is no eval
        split); warns past `limit`; with `stop`, raises TrainingDiverged keeping the last good checkpoint."""

        def __init__(self, limit: float, stop: bool, beta: float, tokens: dict[str, tuple], eval_on: bool,
                     output_dir: Path, say) -> None:  # fmt: skip
            self.limit, self.stop, self.beta, self.tokens = limit, stop, beta, tokens
            self.prefix = "eval_" if eval_on else ""
            self.output_dir, self.say = output_dir, say
            self.checks: list[dict] = []
            self.first_displaced: int | None = None
            self.last_good = 0

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            if self.prefix and "eval_loss" not in logs:
                return
            change = change_per_token(logs, self.prefix, self.beta, self.tokens["eval" if self.prefix else "train"])
            if change is None:
                return
            chosen, rejected = change
            displaced = -chosen > self.limit
            self.checks.append({"step": state.global_step, "chosen_per_token": chosen,
                                "rejected_per_token": rejected, "displaced": displaced})  # fmt: skip
            logs[f"{self.prefix}chosen_logp_change_per_token"] = chosen  # shown in the evaluation table
            if not displaced:
                self.last_good = state.global_step
                return
            message = (
                f"likelihood displacement at step {state.global_step}: the chosen turns' log-probability fell "
                f"{-chosen:.2f} nats per token against the reference (limit {self.limit:g}; rejected "
                f"{rejected:+.2f}); {ADVICE} (now learning_rate {args.learning_rate:g}, beta {self.beta:g})"
            )
            if self.first_displaced is None:
                self.first_displaced = state.global_step
                self.say(f"[yellow]warning: {message}")
            if self.stop:  # every process stops (their logged metrics are the same, gathered), one cleans up
                kept = drop_checkpoints_after(self.output_dir, self.last_good) if state.is_world_process_zero else []
                last = f"; the last good checkpoint is {self.output_dir / kept[-1]}" if kept else ""
                raise TrainingDiverged(f"training stopped: {message}{last}")

        def report(self) -> dict[str, Any]:
            """The guard's part of training_summary.json."""
            return {
                "max_chosen_logp_drop": self.limit,
                "measured_on": "eval split" if self.prefix else "training batches",
                "checks": self.checks,
                "first_displaced_step": self.first_displaced,
                "advice": ADVICE if self.first_displaced is not None else None,
            }

    return DisplacementGuard


def collapsed(text: str) -> bool:
    """An empty turn, or one that is mostly not text (control characters, replacement characters, symbols of
    no script): what a model that DPO broke writes."""
    stripped = text.strip()
    if not stripped:
        return True
    texty = sum(1 for ch in stripped if ch.isalnum() or ch.isspace() or unicodedata.category(ch).startswith("P"))
    return texty / len(stripped) < 0.6 or stripped.count("\ufffd") * 10 > len(stripped)


def generation_check(model: Any, tokenizer: Any, prompts: list[list[dict]], template_kwargs: dict,
                     max_new_tokens: int = 48) -> dict[str, Any]:  # fmt: skip
    """Greedy turns for a few prompts; the share that is empty or not text, with the turns themselves."""
    import torch

    turns = []
    model.eval()
    for messages in prompts:
        ids = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True, **template_kwargs
        )
        ids = {key: value.to(model.device) for key, value in ids.items()}
        with torch.no_grad():
            out = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)  # fmt: skip
        turns.append(tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True))
    bad = [turn for turn in turns if collapsed(turn)]
    share = len(bad) / len(turns) if turns else 0.0
    return {
        "samples": len(turns),
        "collapsed": len(bad),
        "collapsed_share": share,
        "turns": turns,
        "verdict": "collapsed: the model writes empty or non-text turns; " + ADVICE if share >= 0.5 else "ok",
    }
