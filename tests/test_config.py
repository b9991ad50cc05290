"""Config errors name the key, the closest valid one and the valid keys of that section, however deep."""

import pytest

from prefkit.config import validate_config
from prefkit.errors import ConfigError
from prefkit.formats import ActionSpec
from prefkit.recipe import Recipe


@pytest.mark.parametrize(
    "data,closest,neighbours",
    [
        ({"generate": {"teacher": {"base_ur": "http://x/v1"}}}, "generate.teacher.base_url", "in 'generate.teacher'"),
        ({"filter": {"dedup": {"enabld": True}}}, "filter.dedup.enabled", "in 'filter.dedup'"),
        ({"filter": {"verbosity": {"max_thougth_tokens": 3}}}, "filter.verbosity.max_thought_tokens", "ngram_size"),
        ({"eval": {"format": "react", "sampels": 2}}, "eval.samples", "in 'eval'"),
        ({"generate": {"strategy": "corrupt", "corrupt": {"kinz": []}}}, "generate.corrupt.kinds", "seed"),
    ],
)
def test_a_misspelt_nested_key_names_the_closest_and_its_neighbours(data, closest, neighbours):
    with pytest.raises(ConfigError) as caught:
        validate_config(Recipe, data, "r.yaml")
    message = str(caught.value)
    assert f"(did you mean '{closest}'?)" in message and "valid keys" in message and neighbours in message


def test_a_key_nobody_could_mean_still_lists_the_section(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key 'generate.teacher.zzz'; valid keys in 'generate.teacher': "):
        validate_config(Recipe, {"generate": {"teacher": {"zzz": 1}}}, "r.yaml")


def test_an_invalid_regular_expression_in_a_spec_is_a_config_error():
    with pytest.raises(ConfigError, match=r"'\(\[' is not a valid regular expression"):
        validate_config(ActionSpec, {"arguments": {"Action": "(["}}, "spec.yaml")
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        validate_config(ActionSpec, {"commands": ["go to (.*"]}, "spec.yaml")


def test_a_number_in_e_notation_is_a_number_in_every_config(tmp_path):
    """`learning_rate: 2e-4` (YAML 1.2, JSON) is a float, not the string PyYAML's YAML 1.1 makes of it."""
    from prefkit.train.config import load_dpo_config

    path = tmp_path / "dpo.yaml"
    path.write_text("model: m\ndataset: d.jsonl\noutput_dir: out\nlearning_rate: 2e-4\n")
    config = load_dpo_config(path, ["beta=5e-1"])
    assert config.trl("learning_rate") == 2e-4 and config.trl("beta") == 0.5
