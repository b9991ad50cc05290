# prefkit: `make demo` and `make test` work on a fresh machine (Python 3.11, no GPU, no internet beyond PyPI).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
OUT    ?= runs/quickstart

.PHONY: setup system-deps demo test bench clean

setup: $(VENV)/.prefkit-setup

# torch first, pinned: a CPU build of 2.13.0 lies on these machines' disk; anything else pulls a CUDA build.
$(VENV)/.prefkit-setup: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[train,review,env,dev]'
	touch $@

# Redis and Chromium for the Argilla review tests, MariaDB for DBBench, bubblewrap for the code sandbox
# (Debian packages; skipped when present).
system-deps:
	sh scripts/system-deps.sh

demo: setup
	$(VENV)/bin/prefkit run pipelines/quickstart.yaml --run-dir $(OUT)

test: setup system-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q

bench: setup
	$(PY) benchmarks/filter_throughput.py
	$(PY) benchmarks/generate_throughput.py
	$(PY) benchmarks/dpo_overhead.py
	$(PY) benchmarks/review_roundtrip.py

clean:
	rm -rf $(VENV) runs .pytest_cache
