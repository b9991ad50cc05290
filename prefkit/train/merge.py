"""`prefkit merge`: fold a LoRA adapter into its base model and save a plain checkpoint."""

from __future__ import annotations

from pathlib import Path

from prefkit.errors import InputError
from prefkit.outputs import check_outputs, output_folder


def merge_adapter(
    adapter_dir: str | Path, out_dir: str | Path, base: str | None = None, overwrite: bool = False
) -> Path:
    """Load base + adapter, merge, save model and tokenizer to `out_dir` (loads with AutoModelForCausalLM);
    `out_dir` may be neither the adapter nor the base, nor hold files prefkit did not write unless `overwrite`."""
    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    config_file = adapter_dir / "adapter_config.json"
    if not config_file.exists():
        raise InputError("no adapter_config.json here; pass the output_dir of `prefkit dpo`", str(adapter_dir))
    if base is None:
        from prefkit.policies.local import base_of

        base = base_of(adapter_dir)
    check_outputs([adapter_dir, Path(base) if Path(base).exists() else None], folders={"--out": out_dir},
                  overwrite=overwrite)  # fmt: skip
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    except OSError:
        raise InputError(
            f"cannot load the base model {base!r} named by the adapter; pass --base PATH", str(adapter_dir)
        ) from None
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    tokenizer_source = adapter_dir if (adapter_dir / "tokenizer_config.json").exists() else base
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    with output_folder(out_dir):
        merged.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
    return out_dir
