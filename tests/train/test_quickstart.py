"""The offline quickstart recipe end to end, as shipped: the aligned demo model follows the format more
often and uses less filler than before, with 95% intervals that do not overlap."""

import json

import pytest
import yaml

from prefkit.recipe import Recipe
from prefkit.run import Runner
from tests.train.conftest import ROOT


@pytest.mark.slow
def test_quickstart_shows_the_improvement(tmp_path):
    data = yaml.safe_load((ROOT / "pipelines" / "quickstart.yaml").read_text())
    data["tasks"]["path"] = [str(ROOT / p) for p in data["tasks"]["path"]]
    data["dpo"]["config"] = str(ROOT / data["dpo"]["config"])
    path = tmp_path / "quickstart.yaml"
    path.write_text(yaml.safe_dump(data))
    results = Runner(Recipe.from_yaml(path), path, tmp_path / "run", quiet=True).run()
    assert [r.stage for r in results] == ["tasks", "generate", "filter", "review", "dpo", "eval"]
    report = json.loads((tmp_path / "run" / "eval" / "report.json").read_text())
    before, after = report["models"]["before"], report["models"]["after"]
    print("\nquickstart: " + ", ".join(f"{m} {before[m]['mean']:.3f} -> {after[m]['mean']:.3f}"
                                        for m in ("format_valid", "filler", "thought_tokens")))
    assert after["format_valid"]["low"] > before["format_valid"]["high"]
    assert after["filler"]["high"] < before["filler"]["low"]
    assert (tmp_path / "run" / "eval" / "chart.png").exists()
