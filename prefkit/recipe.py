"""A recipe: one YAML file naming every stage's settings (`pipelines/*.yaml`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from prefkit.config import read_yaml, validate_config
from prefkit.filters.pipeline import FilterConfig
from prefkit.generate import GenerateConfig


class TasksStage(BaseModel):
    """Where `prefkit run` gets its tasks: trajectory files split into tasks, then a held-out eval share."""

    model_config = ConfigDict(extra="forbid")

    source: Literal["react", "alfworld-react", "agentbench", "messages", "tasks"] = Field(
        description="Trajectory layout (see `prefkit tasks --help`), or `tasks` for a ready tasks JSONL.")
    path: list[Path] | None = Field(description="One or more files.")
    max_prompt_chars: int | None = Field(None, ge=1, description="Leave out tasks whose context is longer.")
    unique_contexts: bool = Field(True, description="Keep one task per distinct context.")
    eval_share: float = Field(0.2, ge=0, lt=1, description="Share of tasks held out for `eval` (never trained on).")
    limit: int | None = Field(None, ge=1, description="Use at most this many tasks (after shuffling).")
    seed: int = Field(0, description="Shuffle seed.")

    @field_validator("path", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, (str, Path)) else value


class ReviewStage(BaseModel):
    """How pairs are reviewed inside `prefkit run`."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["auto", "tui", "argilla"] = Field(
        "auto", description="auto accepts the rule-based preference; tui asks you in the terminal; argilla pushes "
                            "to a review queue and pulls the answers once every pair is reviewed.")
    dataset: str | None = Field(None, description="argilla: dataset name [default: the recipe's name or file name].")
    workspace: str = Field("prefkit", description="argilla: workspace.")
    annotators_per_pair: int = Field(1, ge=1, description="argilla: submitted answers each pair needs.")
    api_url: str | None = Field(None, description="argilla: server URL [default: ARGILLA_API_URL, then the "
                                                  "credentials of `prefkit review serve` in data_dir]. The API key "
                                                  "never goes in a recipe: ARGILLA_API_KEY or data_dir.")
    data_dir: Path | None = Field(None, description="argilla: `prefkit review serve`'s data dir (credentials.json).")
    wait: bool = Field(False, description="argilla: keep polling until every pair is reviewed, instead of stopping "
                                          "with instructions to run again.")
    poll_seconds: float = Field(30.0, gt=0, description="argilla: seconds between progress checks when waiting.")


class DemoModelSettings(BaseModel):
    """The demo base model `prefkit run` trains when `dpo.base_model: demo`."""

    model_config = ConfigDict(extra="forbid")

    epochs: float = Field(3.0, gt=0, description="SFT epochs.")
    sloppy_share: float = Field(0.5, ge=0, le=1, description="Share of SFT turns replaced by sloppy versions.")
    hidden_size: int = Field(128, ge=16, description="Hidden size.")
    layers: int = Field(2, ge=1, description="Decoder layers.")
    learning_rate: float = Field(2e-3, gt=0, description="SFT learning rate.")
    seed: int = Field(0, description="Seed.")


class DPOStage(BaseModel):
    """Training inside `prefkit run`: a configs/dpo file plus overrides; data and output come from the run."""

    model_config = ConfigDict(extra="forbid")

    config: Path = Field(description="A `prefkit dpo` config (configs/dpo/*.yaml).")
    base_model: str | None = Field(None, description="Base model path, or `demo` to train the demo model first.")
    demo_model: DemoModelSettings = Field(default_factory=DemoModelSettings, description="Demo model settings.")
    set: dict[str, Any] = Field(default_factory=dict, description="Overrides of the dpo config.")


class EvalStage(BaseModel):
    """Evaluation inside `prefkit run`: the base model before and the adapter after, on the held-out tasks."""

    model_config = ConfigDict(extra="forbid")

    format: str = Field(description="Format the turns must follow.")
    temperature: float = Field(1.0, ge=0, description="Sampling temperature (0 = greedy).")
    max_new_tokens: int = Field(64, ge=1, description="Most tokens a generated turn may have.")
    batch_size: int = Field(16, ge=1, description="Generation batch size.")
    limit: int | None = Field(None, ge=1, description="At most this many held-out tasks.")
    samples: int = Field(1, ge=1, description="Turns sampled per task (averaged per task in the report).")
    seed: int = Field(0, description="Sampling and bootstrap seed.")


class Recipe(BaseModel):
    """Settings of a whole pipeline; each section is the config of one stage."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, description="Recipe name.")
    description: str | None = Field(None, description="What the recipe is for.")
    tasks: TasksStage | None = Field(None, description="Where tasks come from (`prefkit run`).")
    generate: GenerateConfig | None = Field(None, description="`prefkit generate` settings; absent: stage left out.")
    filter: FilterConfig | None = Field(None, description="`prefkit filter` settings; absent: stage left out.")
    review: ReviewStage | None = Field(None, description="Review settings; absent: stage left out.")
    dpo: DPOStage | None = Field(None, description="Training settings; absent: stage left out.")
    eval: EvalStage | None = Field(None, description="Evaluation settings; absent: stage left out.")

    @classmethod
    def from_yaml(cls, path: str | Path) -> "Recipe":
        """Load and validate a recipe file; an unknown key is an error naming it."""
        return validate_config(cls, read_yaml(path), str(path))
