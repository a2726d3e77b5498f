# Ops entry points. Everything runs from a local .venv that `make install` builds.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
IN     ?=
OUT    ?= out/audit
ARGS   ?=

.PHONY: install demo test audit bench clean

# torch is pinned and installed first: an unpinned torch pulls the CUDA build (gigabytes).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/audit run fixtures/calls --out out/demo

test: $(STAMP)
	$(BIN)/pytest

audit: $(STAMP)
	@test -n "$(IN)" || { echo "usage: make audit IN=/path/to/recordings OUT=/path/to/results [ARGS='--asr sidecar']"; exit 2; }
	$(BIN)/audit run "$(IN)" --out "$(OUT)" $(ARGS)

# Benchmarks print their figures (accuracy against ground truth, speed); they assert nothing.
bench: $(STAMP)
	$(BIN)/python bench/timing_bench.py
	$(BIN)/python bench/prosody_bench.py
	$(BIN)/python bench/rules_bench.py
	$(BIN)/python bench/batch_bench.py
	$(BIN)/python bench/asr_bench.py

clean:
	rm -rf out .pytest_cache
