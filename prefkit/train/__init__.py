"""Training: LoRA DPO with TRL (`prefkit dpo`), merging adapters, and the tiny models tests build."""

from prefkit.errors import MissingExtraError


def require_train_extra() -> None:
    """Fail with the install hint when the training stack is missing."""
    for module in ("torch", "transformers", "trl", "peft", "datasets"):
        try:
            __import__(module)
        except ImportError:
            raise MissingExtraError("train", module) from None
