# prefkit: `make demo` and `make test` work on a fresh machine (Python 3.11, no GPU, no internet beyond PyPI).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip --disable-pip-version-check -q
OUT    ?= demo-out

.PHONY: setup demo test bench clean

setup: $(VENV)/.prefkit-core

$(VENV)/.prefkit-core: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -e '.[dev]'
	touch $@

demo: setup
	$(VENV)/bin/prefkit tasks data/corpus/react/alfworld_3prompts.json --from alfworld-react --out $(OUT)/tasks.jsonl
	$(VENV)/bin/prefkit generate $(OUT)/tasks.jsonl --strategy corrupt --out $(OUT)/candidates.jsonl
	$(VENV)/bin/prefkit filter $(OUT)/candidates.jsonl --out $(OUT)/curated.jsonl --report $(OUT)/filter-report.json --plots $(OUT)/plots
	@echo "demo done: curated pairs in $(OUT)/curated.jsonl, report in $(OUT)/filter-report.json"

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) benchmarks/filter_throughput.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
