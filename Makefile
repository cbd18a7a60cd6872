# Two commands do all set-up: `make start` (the course, on the embedded data)
# and `make test` (the whole test suite). Both create .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: start test build

start: $(VENV)/.learner
	$(BIN)/course start

test: $(VENV)/.instructor
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest

build: $(VENV)/.instructor
	$(BIN)/course build

$(VENV)/.learner: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.instructor: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[instructor]'
	touch $@ $(VENV)/.learner
