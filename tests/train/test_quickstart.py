"""The offline quickstart recipe end to end in a smaller setting: every stage runs, DPO cuts filler."""

import json

import pytest
import yaml

from prefkit.recipe import Recipe
from prefkit.run import Runner
from tests.train.conftest import ROOT


@pytest.mark.slow
def test_quickstart_runs_end_to_end_and_dpo_reduces_filler(tmp_path):
    data = yaml.safe_load((ROOT / "pipelines" / "quickstart.yaml").read_text())
    data["tasks"]["path"] = [str(ROOT / p) for p in data["tasks"]["path"]]
    data["tasks"].update({"limit": 200, "eval_share": 0.3})
    data["dpo"]["config"] = str(ROOT / data["dpo"]["config"])
    data["dpo"]["demo_model"]["epochs"] = 2
    data["dpo"]["set"] = {"num_train_epochs": 1, "max_length": 768}
    path = tmp_path / "quickstart-small.yaml"
    path.write_text(yaml.safe_dump(data))
    results = Runner(Recipe.from_yaml(path), path, tmp_path / "run", quiet=True).run()
    assert [r.stage for r in results] == ["tasks", "generate", "filter", "review", "dpo", "eval"]
    report = json.loads((tmp_path / "run" / "eval" / "report.json").read_text())
    diff = report["differences"]["after - before"]
    print(f"\nquickstart (small): {json.dumps({k: round(v['mean'], 3) for k, v in diff.items()})}")
    assert report["tasks"] == 60
    assert diff["filler"]["high"] < 0  # the whole interval of the paired difference is below zero
    assert (tmp_path / "run" / "eval" / "chart.png").exists()
