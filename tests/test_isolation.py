"""The autouse fixture in conftest.py: a test never sees the developer's home, Argilla server or API keys."""

import os
from pathlib import Path


def test_each_test_has_its_own_home_and_no_credentials(tmp_path_factory):
    home = Path(os.environ["HOME"])
    assert home.is_relative_to(tmp_path_factory.getbasetemp())
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        assert Path(os.environ[name]).is_relative_to(home)
    assert not [name for name in os.environ if name.startswith("ARGILLA_") or name == "OPENAI_API_KEY"]


def test_the_default_argilla_data_dir_is_inside_that_home():
    from prefkit.review.serve import default_data_dir

    assert default_data_dir().is_relative_to(Path(os.environ["HOME"]))
