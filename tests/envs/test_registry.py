"""The environment registry: an `env:` setting is a name or the environment's own settings, checked by its
config model; a setting written beside `env:` instead of under it is named; the command line's flags become
the same settings."""

import pytest
from click.testing import CliRunner

from prefkit.cli import cli
from prefkit.config import validate_config
from prefkit.envs.dbbench.config import DBBenchConfig
from prefkit.envs.registry import DEFAULT_ENV, ENVIRONMENTS, config_class
from prefkit.errors import ConfigError
from prefkit.evaluate.config import EvalConfig
from prefkit.rollout import RolloutConfig


def test_a_name_alone_or_the_settings_make_the_environments_config():
    assert RolloutConfig().env == config_class(DEFAULT_ENV)()
    assert RolloutConfig(env="dbbench").env == DBBenchConfig()
    config = RolloutConfig(env={"name": "dbbench", "engine": "sqlite", "max_round": 3})
    assert isinstance(config.env, DBBenchConfig) and (config.env.engine, config.env.max_round) == ("sqlite", 3)
    dumped = config.model_dump(mode="json")["env"]  # the whole settings, as the run's state hashes them
    assert dumped["engine"] == "sqlite" and dumped["statement_timeout"] == 10.0
    assert EvalConfig(env={"engine": "sqlite"}).env.name == DEFAULT_ENV and EvalConfig(format="react").env is None


@pytest.mark.parametrize(
    "data, message",
    [
        ({"env": "nowhere"}, "unknown environment 'nowhere'; choose one of: " + ", ".join(ENVIRONMENTS)),
        ({"env": {"name": "dbbench", "engine": "postgres"}}, "'env.engine': Input should be 'mariadb' or 'sqlite'"),
        ({"env": {"name": "dbbench", "engnie": "sqlite"}}, "unknown key 'env.engnie' (did you mean 'env.engine'?)"),
        ({"env": {"engine": "sqlite", "db_url": "mysql://u:p@h:1"}}, "db_url is for the mariadb engine"),
        ({"env": {"max_round": 0}}, "'env.max_round': Input should be greater than or equal to 1"),
        ({"engine": "sqlite"}, "'engine' is a setting of the environment: write it under env"),
        ({"temperature": 3}, "'temperature': Input should be less than or equal to 2"),
    ],
)
def test_a_bad_env_setting_is_one_line_naming_the_key(data, message):
    for model in (RolloutConfig, EvalConfig):
        with pytest.raises(ConfigError) as caught:
            validate_config(model, {"format": "react", **data} if model is EvalConfig else data, "recipe.yaml")
        assert message in str(caught.value) and "\n" not in str(caught.value)


def test_the_env_declares_its_format_and_eval_holds_to_it():
    with pytest.raises(ConfigError, match="the dbbench environment reads its turns in the react format, not alfworld"):
        validate_config(EvalConfig, {"env": "dbbench", "format": "alfworld"}, "recipe.yaml")
    env = DBBenchConfig()
    assert env.format == "react" and env.action_spec().style == "dbbench"
    messages = [{"role": "user", "content": "i"}, {"role": "assistant", "content": "Ok."},
                {"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]  # fmt: skip
    assert env.policy_turns(messages) == [{"role": "assistant", "content": "a"}]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--temperature", "3"], "'temperature': Input should be less than or equal to 2"),
        (["--temperature", "-1"], "'temperature': Input should be greater than or equal to 0"),
        (["--max-new-tokens", "0"], "'max_new_tokens': Input should be greater than or equal to 1"),
        (["--samples", "0"], "'samples'"),
        (["--samples", "2"], "several samples per task need a temperature above 0"),
        (["--concurrency", "0"], "'concurrency'"),
        (["--batch-size", "0"], "'batch_size'"),
        (["--limit", "0"], "'limit'"),
        (["--seed", "-1"], "'seed'"),
        (["--max-round", "0"], "'env.max_round'"),
        (["--statement-timeout", "0"], "'env.statement_timeout'"),
        (["--engine", "postgres"], "'postgres' is not one of 'mariadb', 'sqlite'"),
        (["--engine", "sqlite", "--db-url", "mysql://u:p@h:1"], "db_url is for the mariadb engine"),
        (["--env", "nowhere"], "Invalid value for '--env': 'nowhere' is not"),
        (["--format", "alfworld"], "reads its turns in the react format, not alfworld"),
        (["--format", "nonsense"], "reads its turns in the react format, not nonsense"),
    ],
)
def test_eval_with_an_environment_refuses_every_out_of_range_value_in_one_line(tmp_path, flags, message):
    tasks = tmp_path / "t.jsonl"
    tasks.write_text("{}\n")
    argv = [
        "eval",
        "--env",
        "dbbench",
        "--tasks",
        str(tasks),
        "--model",
        "replay:r.jsonl",
        "--out",
        str(tmp_path / "e"),
    ]
    if "--env" in flags:
        argv = [a for a in argv if a not in ("--env", "dbbench")]
    result = CliRunner().invoke(cli, [*argv, *flags])
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert not (tmp_path / "e").exists()


def test_env_flags_without_env_are_the_default_environments_for_rollout_and_an_error_for_eval(tmp_path):
    tasks = tmp_path / "t.jsonl"
    tasks.write_text("{}\n")
    result = CliRunner().invoke(cli, ["eval", "--engine", "sqlite", "--tasks", str(tasks), "--model", "replay:r",
                                      "--out", str(tmp_path / "e")])  # fmt: skip
    assert result.exit_code == 2 and "--engine is a setting of an environment; give --env" in result.stderr
    result = CliRunner().invoke(cli, ["rollout", str(tasks), "--engine", "sqlite", "--max-round", "0",
                                      "--policy", "replay:r", "--out", str(tmp_path / "o")])  # fmt: skip
    assert result.exit_code == 2 and "'env.max_round'" in result.stderr
