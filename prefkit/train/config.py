"""The `prefkit dpo` config: prefkit's own keys (model, data, split, data checks, LoRA, 4-bit, chat template);
every other key is a setting of the installed TRL's `DPOConfig` and goes to it unchanged, and every `lora:`
key goes to `peft.LoraConfig`. Both are checked by name against the installed libraries (with a closest-match
hint) before a model or dataset is touched."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from prefkit.config import ConfigPath, load_yaml, read_yaml, validate_config
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

# prefkit's starting values for TRL settings a config leaves out: TRL's own (learning rate 1e-6, a save
# every 500 steps, every tracker on) suit neither a CPU nor a first run. Anything else is TRL's default.
TRL_DEFAULTS: dict[str, Any] = {
    "beta": 0.1,
    "loss_type": ["sigmoid"],
    "max_length": 1024,
    "truncation_mode": "keep_start",
    "learning_rate": 5e-5,
    "lr_scheduler_type": "cosine",
    "num_train_epochs": 1.0,
    "per_device_train_batch_size": 4,
    "per_device_eval_batch_size": 8,
    "seed": 42,
    "report_to": ["none"],
    "save_steps": 50,
    "save_total_limit": 2,
    "logging_steps": 5,
}

# prefkit's LoRA: rank 16 on the attention projections. `alpha` and `dropout` are accepted for
# peft's `lora_alpha` and `lora_dropout`.
LORA_DEFAULTS: dict[str, Any] = {
    "r": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.05,
    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
}
LORA_ALIASES = {"alpha": "lora_alpha", "dropout": "lora_dropout"}
VARIANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


class TinyModelSettings(BaseModel):
    """Build a tiny random Qwen3 model at `model` when that path does not exist yet (tests and the demo)."""

    model_config = ConfigDict(extra="forbid")

    texts_from: ConfigPath = Field(description="Pairs or tasks JSONL whose texts train the BPE tokenizer.")
    hidden_size: int = Field(64, ge=8, description="Hidden size.")
    layers: int = Field(2, ge=1, description="Decoder layers.")
    heads: int = Field(4, ge=1, description="Attention heads.")
    kv_heads: int = Field(2, ge=1, description="Key/value heads.")
    intermediate_size: int = Field(128, ge=8, description="MLP size.")
    vocab_size: int = Field(2048, ge=300, description="Most BPE tokens.")
    seed: int = Field(0, description="Seed of the random weights.")


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        merged[key] = (
            _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
        )
    return merged


class DPOStageConfig(BaseModel):
    """Settings of `prefkit dpo` (the `dpo:` section of a recipe). Keys not listed here are TRL `DPOConfig`
    settings, passed through unchanged (see TRL_DEFAULTS for the values prefkit starts from)."""

    model_config = ConfigDict(extra="allow")

    extends: ConfigPath | None = Field(
        None, description="A dpo config file (configs/dpo/*.yaml) whose settings these start from; keys here win."
    )
    model: str | None = Field(
        None,
        description="Base model: a local path or a hub id already in the local cache (in a recipe with a "
        "demo_model: section, the demo model).",
    )
    tiny_model: TinyModelSettings | None = Field(None, description="Build a tiny random model at `model` if missing.")
    dataset: list[ConfigPath] | None = Field(
        None, description="Pairs: JSONL files from earlier stages, or a `datasets` directory (a run: its pairs)."
    )
    eval_dataset: list[ConfigPath] | None = Field(None, description="Held-out pairs; default: a split of `dataset`.")
    eval_split: float = Field(
        0.1, ge=0, lt=1, description="Share held out when no eval_dataset (stratified by meta.domain)."
    )
    output_dir: ConfigPath | None = Field(
        None, description="Where checkpoints, the adapter and training_summary.json go (a run: RUN_DIR/adapter)."
    )
    max_truncated_share: float = Field(
        0.05,
        ge=0,
        le=1,
        description="Most share of pairs that may be unusable at max_length (prompt fills it, or chosen would be "
        "cut); those pairs are left out, above this share it is an error.",
    )
    lora: dict[str, Any] = Field(
        default_factory=dict,
        description="peft.LoraConfig settings (r, lora_alpha or alpha, lora_dropout or dropout, target_modules, "
        "use_dora, use_rslora, bias, modules_to_save, ...); prefkit starts from LORA_DEFAULTS.",
    )
    load_in_4bit: bool = Field(False, description="Load the base in 4 bits (bitsandbytes; needs a CUDA GPU).")
    chat_template: str | None = Field(
        None, description="Jinja chat template, or a path to one, when the tokenizer has none."
    )
    chat_template_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Passed to the chat template, e.g. {enable_thinking: false} for Qwen3."
    )
    max_chosen_logp_drop: float = Field(
        1.0,
        gt=0,
        description="Likelihood displacement guard: most fall, in nats per token against the reference, of the "
        "policy's log-probability of chosen turns (on the eval split, else on training batches) before prefkit "
        "warns.",
    )
    stop_on_displacement: bool = Field(
        False, description="Stop training (exit 5) at the first displacement, keeping the last good checkpoint."
    )
    generation_check: int = Field(
        4,
        ge=0,
        description="After training, sample this many eval prompts and flag a collapsed model (empty or "
        "non-text turns) in the summary; 0 turns the check off.",
    )
    variants: dict[str, dict[str, Any]] | None = Field(
        None,
        description="Ablations: NAME -> settings laid over this section (e.g. {dpo: {loss_type: [sigmoid]}, "
        "both: {}}); each is trained on the same pairs and seed into OUTPUT_DIR/NAME, and an eval stage "
        "compares them all.",
    )

    @field_validator("variants")
    @classmethod
    def _variant_names(cls, variants: dict[str, dict[str, Any]] | None):
        for name, settings in (variants or {}).items():
            if not VARIANT_NAME.fullmatch(name) or name in ("before", "base"):
                raise ValueError(f"variant name {name!r}: letters, digits, '-' and '_' (not 'before' or 'base')")
            if not isinstance(settings, dict) or "variants" in settings:
                raise ValueError(f"variant {name!r}: a mapping of dpo settings (without variants of its own)")
        if variants is not None and not variants:
            raise ValueError("variants: name at least one, or leave the key out")
        return variants

    def variant(self, name: str) -> DPOStageConfig:
        """The config of one variant: this one without `variants`, its settings laid over, into OUTPUT_DIR/NAME."""
        data = self.model_dump(exclude={"variants", "extends"})
        data = _merge(data, (self.variants or {})[name])
        if self.output_dir is not None:
            data["output_dir"] = self.output_dir / name
        return DPOStageConfig.model_validate(data)

    @model_validator(mode="before")
    @classmethod
    def _extend(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict) or not data.get("extends"):
            return data
        base = (info.context or {}).get("base_dir")
        path = Path(data["extends"])
        path = Path(base) / path if base is not None and not path.is_absolute() else path
        return _merge(read_yaml(path), data)

    @field_validator("dataset", "eval_dataset", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, (str, Path)) else value

    @property
    def trl_settings(self) -> dict[str, Any]:
        """The TRL DPOConfig settings: prefkit's starting values overlaid with the config's own."""
        extras = dict(self.model_extra or {})
        for key in ("loss_type", "report_to"):
            if isinstance(extras.get(key), str):
                extras[key] = [extras[key]]
        return {**TRL_DEFAULTS, **extras}

    def trl(self, key: str) -> Any:
        """One TRL setting as training will use it (the config's, prefkit's start value, or TRL's default)."""
        settings = self.trl_settings
        return settings[key] if key in settings else trl_defaults().get(key)

    @property
    def lora_settings(self) -> dict[str, Any]:
        """peft.LoraConfig keyword arguments: LORA_DEFAULTS overlaid with `lora:` (short names translated)."""
        return {**LORA_DEFAULTS, **{LORA_ALIASES.get(key, key): value for key, value in self.lora.items()}}


@functools.cache
def trl_defaults() -> dict[str, Any]:
    """Field names and defaults of the installed TRL's DPOConfig."""
    from trl import DPOConfig

    out = {}
    for item in dataclasses.fields(DPOConfig):
        if item.default is not dataclasses.MISSING:
            out[item.name] = item.default
        elif item.default_factory is not dataclasses.MISSING:
            out[item.name] = item.default_factory()
        else:
            out[item.name] = None
    return out


def dpo_config_fields() -> set[str]:
    """Field names of the installed TRL's DPOConfig."""
    return set(trl_defaults())


def lora_config_fields() -> set[str]:
    """Field names of the installed peft's LoraConfig."""
    from peft import LoraConfig

    return {item.name for item in dataclasses.fields(LoraConfig)}


def trl_loss_types() -> set[str]:
    """The loss types the installed TRL documents for DPOConfig.loss_type (empty if it cannot tell)."""
    from trl import DPOConfig

    help_text = next(f for f in dataclasses.fields(DPOConfig) if f.name == "loss_type").metadata.get("help", "")
    return set(re.findall(r"`'([a-z_]+)'`", help_text))


def _unknown(key: str, known: set[str], what: str, prefix: str = "") -> str:
    close = difflib.get_close_matches(key, sorted(known), n=1)
    hint = f"; did you mean '{prefix}{close[0]}'?" if close else ""
    return f"unknown key '{prefix}{key}' ({what}){hint}"


# (type of TRL's default, what a value must be, whether a value fits); bool first: True is also an int.
_KINDS = (
    (bool, "true or false", lambda v: isinstance(v, bool)),
    (int, "a whole number", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    (float, "a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
    (str, "a string", lambda v: isinstance(v, str)),
)


def _check_type(key: str, value: Any, default: Any, source: str) -> None:
    """A passed-through value must have the type of TRL's default for it (TRL's dataclass does not check)."""
    if default is None or value is None:
        return
    for kind, words, fits in _KINDS:
        if isinstance(default, kind):
            if not fits(value):
                raise ConfigError(f"{source}: '{key}': expected {words} (TRL's DPOConfig.{key}), got {value!r}")
            return


def check_dpo_config(config: DPOStageConfig, source: str, needs_paths: bool = True) -> None:
    """Every key by name against prefkit's, TRL's DPOConfig and peft's LoraConfig; loss types against TRL's
    list. `needs_paths`: model, dataset and output_dir must be set (a run fills them itself)."""
    if needs_paths:
        for key in ("model", "dataset", "output_dir"):
            if not getattr(config, key):
                raise ConfigError(f"{source}: missing required setting '{key}'")
    known = set(DPOStageConfig.model_fields)
    trl_fields = dpo_config_fields()
    for key in config.model_extra or {}:
        if key in ("config", "base_model", "set"):
            raise ConfigError(
                f"{source}: '{key}' is not a dpo setting: a recipe's dpo: section is the dpo config itself "
                "(`extends: FILE` to start from a config file, keys inline, a demo_model: section for the demo model)"
            )
        if key in REMOVED_TRL_KEYS:
            raise ConfigError(f"{source}: '{key}' is no longer a DPOConfig setting ({REMOVED_TRL_KEYS[key]})")
        if key not in trl_fields:
            raise ConfigError(
                f"{source}: {_unknown(key, known | trl_fields, 'neither a prefkit nor a TRL DPOConfig setting')}"
            )
        _check_type(key, config.model_extra[key], trl_defaults()[key], source)
    lora_fields = lora_config_fields()
    for key in config.lora:
        if LORA_ALIASES.get(key, key) not in lora_fields:
            raise ConfigError(f"{source}: {_unknown(key, lora_fields, 'not a peft LoraConfig setting', 'lora.')}")
    losses = trl_loss_types()
    loss_type = config.trl("loss_type")
    unknown_losses = [loss for loss in loss_type if losses and loss not in losses]
    if unknown_losses:
        raise ConfigError(f"{source}: loss_type {unknown_losses[0]!r} is not one of TRL's: {', '.join(sorted(losses))}")
    weights = config.trl("loss_weights")
    if weights is not None and len(weights) != len(loss_type):
        raise ConfigError(f"{source}: loss_weights has {len(weights)} values for {len(loss_type)} loss types")
    for name in config.variants or {}:
        check_dpo_config(config.variant(name), f"{source}: variant '{name}'", needs_paths)


def load_dpo_config(
    path: str | Path | None, overrides: list[str] = (), output_dir: str | None = None
) -> DPOStageConfig:
    """Read the YAML, apply `--set key=value` overrides, validate every key (ours, TRL's and peft's)."""
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
        try:
            target[leaf] = load_yaml(raw)
        except yaml.YAMLError as error:
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({problem}); quote it") from None
    if output_dir:
        data["output_dir"] = output_dir
    source = str(path or "dpo options")
    config = validate_config(DPOStageConfig, data, source)
    check_dpo_config(config, source)
    return config
