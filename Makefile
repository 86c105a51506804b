# Two commands matter: `make demo` (the main job) and `make test` (everything CI runs).
# Both build the virtualenv on first use from python3 alone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
TYPECHECK_TREE := .build/typecheck

.PHONY: install demo test lint typecheck pytest pytest-oldest bench clean mutation

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# The oldest supported OpenTelemetry set (constraints-oldest.txt): the suite runs against both ends.
OLDEST_VENV  := .venv-oldest
OLDEST_STAMP := $(OLDEST_VENV)/.installed-stamp

$(OLDEST_STAMP): pyproject.toml constraints-oldest.txt
	rm -rf $(OLDEST_VENV)  # from scratch: packages newer than the oldest set must not linger
	$(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/python -m pip install -q --disable-pip-version-check -c constraints-oldest.txt -e '.[dev]'
	touch $(OLDEST_STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/otelpipe demo $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

# mypy cannot follow the package-dir mapping (processors/ -> otelpipe.processors) of an
# editable install, so it checks a symlink tree laid out the way the wheel is.
typecheck: $(STAMP)
	rm -rf $(TYPECHECK_TREE) && mkdir -p $(TYPECHECK_TREE)
	cp -rs $(CURDIR)/otelpipe $(TYPECHECK_TREE)/otelpipe
	cp -rs $(CURDIR)/processors $(TYPECHECK_TREE)/otelpipe/processors
	cp -rs $(CURDIR)/exporters $(TYPECHECK_TREE)/otelpipe/exporters
	cd $(TYPECHECK_TREE) && $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml -p otelpipe

pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

pytest-oldest: $(OLDEST_STAMP)
	$(OLDEST_VENV)/bin/pytest $(PYTEST_ARGS)

test: lint typecheck pytest pytest-oldest

# Figures, not pass/fail: each script prints ratios against a baseline measured in the same run.
bench: $(STAMP)
	$(BIN)/python bench/span_end.py
	$(BIN)/python bench/log_record.py
	$(BIN)/python bench/redaction.py --quick
	$(BIN)/python bench/slo_tick.py
	$(BIN)/python bench/soak.py --quick
	$(BIN)/python bench/notifier_hang.py --rounds 1
	$(BIN)/python bench/detection_latency.py --runs 1
	$(BIN)/python bench/fleet_detection.py --runs 1 --prometheus-runs 0
	$(BIN)/python bench/fleet_merge.py
	$(BIN)/python bench/request_cost.py --quick
	$(BIN)/python bench/request_cost.py --quick --sampling 0.01 --variants none --shape 1,5
	$(BIN)/python bench/served_cost.py --quick
	$(BIN)/python bench/request_calls.py --top 20
	$(BIN)/python bench/metric_collection.py --rounds 10

# Not part of `make test` (tens of minutes): break the settings wiring in config.py/pipeline.py one
# way at a time and count the mutants the wiring tests kill. MUTATION_ARGS='--only pipeline.py' narrows it.
mutation: $(STAMP)
	$(BIN)/python bench/mutate_wiring.py $(MUTATION_ARGS)

clean:
	rm -rf $(VENV) $(OLDEST_VENV) .build build *.egg-info .mypy_cache .pytest_cache .ruff_cache
