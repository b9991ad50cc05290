"""The `prefkit dpo` config: prefkit's own settings plus any TRL `DPOConfig` field, validated as a whole
before a model or dataset is touched."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from prefkit.config import read_yaml, validate_config
from prefkit.errors import ConfigError

# Keys TRL's DPOConfig used to have; a config that still uses them gets told what replaced them.
REMOVED_TRL_KEYS = {
    "max_prompt_length": "removed from TRL's DPOConfig in 0.29: truncation is now `max_length` + `truncation_mode`",
    "max_completion_length": "removed from TRL's DPOConfig in 0.29: truncation is now `max_length` + `truncation_mode`",
    "rpo_alpha": "removed from TRL's DPOConfig in 0.29: use `loss_type: [sigmoid, sft]` with `loss_weights`",
    "use_liger_loss": "removed from TRL's DPOConfig in 0.29",
    "model_adapter_name": "removed from TRL's DPOConfig in 0.29",
    "ref_adapter_name": "removed from TRL's DPOConfig in 0.29",
}


class LoraSettings(BaseModel):
    """The LoRA adapter (peft.LoraConfig)."""

    model_config = ConfigDict(extra="forbid")

    r: int = Field(16, ge=1, description="Rank of the update matrices.")
    alpha: int = Field(32, ge=1, description="Scaling (lora_alpha).")
    dropout: float = Field(0.05, ge=0, lt=1, description="Dropout on the LoRA path.")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"],
        description="Modules that get adapters (default: the attention projections).")


class TinyModelSettings(BaseModel):
    """Build a tiny random Qwen3 model at `model` when that path does not exist yet (tests and the demo)."""

    model_config = ConfigDict(extra="forbid")

    texts_from: Path = Field(description="Pairs or tasks JSONL whose texts train the BPE tokenizer.")
    hidden_size: int = Field(64, ge=8, description="Hidden size.")
    layers: int = Field(2, ge=1, description="Decoder layers.")
    heads: int = Field(4, ge=1, description="Attention heads.")
    kv_heads: int = Field(2, ge=1, description="Key/value heads.")
    intermediate_size: int = Field(128, ge=8, description="MLP size.")
    vocab_size: int = Field(2048, ge=300, description="Most BPE tokens.")
    seed: int = Field(0, description="Seed of the random weights.")


class DPOStageConfig(BaseModel):
    """Settings of `prefkit dpo`. Keys not listed here go to TRL's DPOConfig unchanged."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(description="Base model: a local path or a hub id already in the local cache.")
    dataset: list[Path] = Field(description="Pairs: JSONL files from earlier stages, or a `datasets` directory.")
    eval_dataset: list[Path] | None = Field(None, description="Held-out pairs; default: a split of `dataset`.")
    eval_split: float = Field(0.1, ge=0, lt=1, description="Share held out when no eval_dataset (stratified by meta.domain).")
    output_dir: Path = Field(description="Where checkpoints, the adapter and training_summary.json go.")
    beta: float = Field(0.1, gt=0, description="DPO beta: how far the policy may move from the reference.")
    loss_type: list[str] = Field(default_factory=lambda: ["sigmoid"], description="TRL loss types, e.g. [sigmoid, sft].")
    loss_weights: list[float] | None = Field(None, description="Weights of the loss types.")
    max_length: int | None = Field(1024, ge=8, description="Most tokens of prompt + completion (TRL truncates beyond).")
    truncation_mode: Literal["keep_start", "keep_end"] = Field("keep_start", description="Which end TRL keeps.")
    max_truncated_share: float = Field(
        0.05, ge=0, le=1, description="Most share of pairs that may be unusable at max_length (prompt fills it, or "
                                      "chosen would be cut); those pairs are left out, above this share it is an error.")
    learning_rate: float = Field(5e-5, gt=0, description="Peak learning rate.")
    lr_scheduler_type: str = Field("cosine", description="Learning-rate schedule.")
    warmup_steps: float = Field(0, ge=0, description="Warm-up optimizer steps, or a share of all steps when below 1.")
    num_train_epochs: float = Field(1.0, gt=0, description="Epochs (ignored when max_steps > 0).")
    max_steps: int = Field(-1, description="Optimizer steps; -1 means use epochs.")
    per_device_train_batch_size: int = Field(4, ge=1, description="Pairs per device per step.")
    per_device_eval_batch_size: int = Field(8, ge=1, description="Pairs per device per eval step.")
    gradient_accumulation_steps: int = Field(1, ge=1, description="Micro-batches per optimizer step.")
    lora: LoraSettings = Field(default_factory=LoraSettings, description="LoRA adapter settings.")
    load_in_4bit: bool = Field(False, description="Load the base in 4 bits (bitsandbytes; needs a CUDA GPU).")
    precompute_ref_log_probs: bool = Field(False, description="Compute reference log-probs once before training.")
    seed: int = Field(42, description="Random seed.")
    report_to: list[str] = Field(default_factory=lambda: ["none"], description="Trackers (none, wandb, tensorboard...).")
    save_steps: int = Field(50, ge=1, description="Checkpoint every N optimizer steps.")
    save_total_limit: int | None = Field(2, ge=1, description="Checkpoints kept.")
    logging_steps: int = Field(5, ge=1, description="Log metrics every N steps.")
    eval_steps: int | None = Field(None, ge=1, description="Evaluate every N steps (default: at the end of each epoch).")
    chat_template: str | None = Field(None, description="Jinja chat template, or a path to one, when the tokenizer has none.")
    chat_template_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Passed to the chat template, e.g. {enable_thinking: false} for Qwen3.")
    tiny_model: TinyModelSettings | None = Field(None, description="Build a tiny random model at `model` if missing.")

    @field_validator("dataset", "eval_dataset", "loss_type", "report_to", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, (str, Path)) else value

    @property
    def trl_extras(self) -> dict[str, Any]:
        """Keys passed through to TRL's DPOConfig."""
        return dict(self.model_extra or {})


def dpo_config_fields() -> set[str]:
    """Field names of the installed TRL's DPOConfig."""
    import dataclasses

    from trl import DPOConfig

    return {field.name for field in dataclasses.fields(DPOConfig)}


def trl_loss_types() -> set[str]:
    """The loss types the installed TRL documents for DPOConfig.loss_type (empty if it cannot tell)."""
    import dataclasses
    import re

    from trl import DPOConfig

    help_text = next(f for f in dataclasses.fields(DPOConfig) if f.name == "loss_type").metadata.get("help", "")
    return set(re.findall(r"`'([a-z_]+)'`", help_text))


def load_dpo_config(path: str | Path | None, overrides: list[str] = (), output_dir: str | None = None) -> DPOStageConfig:
    """Read the YAML, apply `--set key=value` overrides, validate every key (ours and TRL's)."""
    data = read_yaml(path) if path else {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: expected key=value")
        target = data
        *parents, leaf = key.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
            if not isinstance(target, dict):
                raise ConfigError(f"--set {item!r}: '{parent}' is not a section")
        target[leaf] = yaml.safe_load(raw)
    if output_dir:
        data["output_dir"] = output_dir
    source = str(path or "dpo options")
    config = validate_config(DPOStageConfig, data, source)
    losses = trl_loss_types()
    unknown_losses = [loss for loss in config.loss_type if losses and loss not in losses]
    if unknown_losses:
        raise ConfigError(f"{source}: loss_type {unknown_losses[0]!r} is not one of TRL's: {', '.join(sorted(losses))}")
    if config.loss_weights is not None and len(config.loss_weights) != len(config.loss_type):
        raise ConfigError(f"{source}: loss_weights has {len(config.loss_weights)} values for "
                          f"{len(config.loss_type)} loss types")
    known = set(DPOStageConfig.model_fields)
    trl_fields = dpo_config_fields()
    for key in config.trl_extras:
        if key in REMOVED_TRL_KEYS:
            raise ConfigError(f"{source}: '{key}' is no longer a DPOConfig setting ({REMOVED_TRL_KEYS[key]})")
        if key not in trl_fields:
            close = difflib.get_close_matches(key, sorted(known | trl_fields), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"{source}: unknown key '{key}' (neither a prefkit nor a TRL DPOConfig setting){hint}")
    return config
