"""Training commands: `prefkit demo-model`, `prefkit dpo`, `prefkit merge`."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from prefkit.cli.app import console, echo_json, quiet_training_libraries, stage_context, verbose
from prefkit.cli.options import PATH, build_config, config_option, pop_config_flags
from prefkit.train.demo_model import DemoModelConfig


@click.command("demo-model")
@click.option("--out", "out_dir", required=True, type=PATH, help="Where the model goes.")
@click.option(
    "--tasks", "tasks_path", type=PATH, help="Tasks with meta.reference [default: the bundled ALFWorld ReAct turns]."
)
@config_option(DemoModelConfig, "epochs")
@config_option(DemoModelConfig, "sloppy_share")
@config_option(DemoModelConfig, "hidden_size")
@config_option(DemoModelConfig, "layers")
@config_option(DemoModelConfig, "learning_rate")
@config_option(DemoModelConfig, "seed")
@click.option("--overwrite", is_flag=True, help="Write into OUT even if it holds files prefkit did not write.")
@click.option("-q", "--quiet", is_flag=True, help="Nothing but errors.")
def demo_model_command(out_dir, tasks_path, overwrite, quiet, **flags) -> None:
    """Build a tiny Qwen3 from scratch and train it briefly (SFT, CPU) on real turns mixed with sloppy ones.

    Before DPO it produces both disciplined and sloppy turns: a toy to watch the mechanism work, not an agent.

    \b
    Example:
      prefkit demo-model --out runs/demo-model
    """
    from prefkit.train.demo_model import demo_model_stage

    config = build_config(DemoModelConfig, None, pop_config_flags(flags), "demo-model options")
    demo_model_stage(config, tasks_path, out_dir, ctx=stage_context(quiet, training=True, overwrite=overwrite))
    if not quiet:
        console.print(f"demo model -> {out_dir}")


@click.command("dpo")
@click.option("--config", "config_path", required=True, type=PATH, help="DPO config YAML (configs/dpo/).")
@click.option("--output-dir", help="Overrides output_dir.")
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a setting (YAML value; dotted keys for sections, e.g. lora.r=8); repeatable.",
)
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint in output_dir.")
@click.option("--overwrite", is_flag=True, help="Write into output_dir even if it holds files prefkit did not write.")
@click.option("--check-only", is_flag=True, help="Validate config and data, then stop before loading the model.")
@click.option("--json", "as_json", is_flag=True, help="Print the training summary as JSON on stdout.")
@click.option("-q", "--quiet", is_flag=True, help="Nothing but errors.")
def dpo_command(config_path, output_dir, overrides, resume, overwrite, check_only, as_json, quiet) -> None:
    """Train a LoRA adapter with TRL's DPOTrainer on reviewed pairs.

    Config, data and lengths are all checked before the model loads. Any DPOConfig key of the installed
    TRL may appear in the YAML and is passed through, every lora: key to peft's LoraConfig. For several
    processes use accelerate or torchrun:

    \b
    Example:
      prefkit dpo --config configs/dpo/tiny-cpu.yaml
      prefkit dpo --config configs/dpo/ironguard-qwen3-4b.yaml --set dataset=reviewed.jsonl --set beta=0.2
      accelerate launch --config_file configs/accelerate/ddp.yaml -m prefkit dpo --config ...
      torchrun --standalone --nproc_per_node 2 -m prefkit dpo --config configs/dpo/tiny-cpu.yaml   # CPU, gloo
    """
    from prefkit.train import require_train_extra

    require_train_extra()
    from prefkit.train.config import load_dpo_config

    source = str(config_path)
    config = load_dpo_config(config_path, list(overrides), output_dir)
    if check_only:
        from prefkit.train.dpo import prepare

        _, _, _, report = prepare(config, source)
        left_out = report.prompt_fills_max_length + report.chosen_cut
        click.echo(
            json.dumps(report.as_dict(), indent=2)
            if as_json
            else f"ok: {report.train} train / {report.eval} eval pairs; {left_out} left out at "
            f"max_length={config.trl('max_length')}"
        )
        return
    from prefkit.train.dpo import dpo_stage

    result = dpo_stage(config, resume=resume, ctx=stage_context(quiet, source, training=True, overwrite=overwrite))
    summaries = result.get("summaries") or ({"": result["summary"]} if result.get("summary") else {})
    if not summaries:
        return  # not the main process
    if as_json:
        shown = {name: {k: v for k, v in s.items() if k != "log_history"} for name, s in summaries.items()}
        echo_json(shown[""] if "" in shown else shown)
    if not quiet:
        for name, summary in summaries.items():
            _print_training_table(summary, config.output_dir / name if name else config.output_dir)


def _print_training_table(summary: dict, output_dir: Path) -> None:
    table = Table(title=f"prefkit dpo -> {output_dir}")
    table.add_column("metric")
    table.add_column("train (final)", justify="right")
    table.add_column("train (best)", justify="right")
    table.add_column("eval (final)", justify="right")
    for key in summary["train"]["final"]:

        def cell(part: str, kind: str, key: str = key) -> str:
            return f"{summary[part][kind][key]:.4f}" if key in summary[part][kind] else "-"

        table.add_row(key, cell("train", "final"), cell("train", "best"), cell("eval", "final"))
    data = summary["data"]
    console.print(table)
    console.print(
        f"{summary['steps']} steps; {data['train']} train / {data['eval']} eval pairs; "
        f"{data['prompt_fills_max_length'] + data['chosen_cut']} left out at max_length; trainable "
        f"{summary['trainable_parameters']:,} of {summary['total_parameters']:,} parameters (LoRA)",
        soft_wrap=True,
    )
    displaced = (summary.get("displacement") or {}).get("first_displaced_step")
    if displaced is not None:
        console.print(
            f"[yellow]likelihood displacement from step {displaced}: the chosen turns lost probability against "
            f"the reference; {summary['displacement']['advice']}",
            soft_wrap=True,
        )
    check = summary.get("generation_check")
    if check and check["verdict"] != "ok":
        console.print(
            f"[yellow]{check['collapsed']} of {check['samples']} sampled turns: {check['verdict']}", soft_wrap=True
        )


@click.command("merge")
@click.argument("adapter_dir", type=PATH)
@click.option("--out", "out_dir", required=True, type=PATH, help="Where the merged model goes.")
@click.option("--base", help="Base model path (default: the one recorded in the adapter).")
@click.option("--overwrite", is_flag=True, help="Write into OUT even if it holds files prefkit did not write.")
def merge_command(adapter_dir: Path, out_dir: Path, base: str | None, overwrite: bool) -> None:
    """Merge a LoRA adapter into its base: a plain checkpoint for AutoModelForCausalLM.from_pretrained.

    \b
    Example:
      prefkit merge runs/tiny-cpu/adapter --out runs/tiny-cpu/merged
    """
    from prefkit.train import require_train_extra

    require_train_extra()
    from prefkit.train.merge import merge_adapter
    from prefkit.train.progress import library_output

    loud = verbose()
    if not loud:
        quiet_training_libraries()
    with library_output(loud):
        merged = merge_adapter(adapter_dir, out_dir, base, overwrite)
    console.print(f"merged model -> {merged}")
