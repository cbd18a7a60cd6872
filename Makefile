# Two commands do all set-up: `make start` (the course, on the embedded data)
# and `make test` (the whole test suite). Both create .venv on first use, with
# the first Python 3.11+ found (or PYTHON=/path/to/python3.11), and rebuild a
# .venv that an older Python made.
FOUND_PYTHON := $(shell for p in python3 python3.13 python3.12 python3.11; do \
	command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
	&& { echo $$p; break; }; done)
PYTHON ?= $(FOUND_PYTHON)
VENV ?= .venv
BIN := $(VENV)/bin
LOG := $(VENV)/install.log

# A .venv whose Python is older than 3.11 is stale: forget its stamps so that it is rebuilt below.
VENV_OLD := $(shell test -x $(BIN)/python && ! $(BIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
	2>/dev/null && echo yes)
ifeq ($(VENV_OLD),yes)
$(shell rm -f $(VENV)/.learner $(VENV)/.instructor)
endif

.PHONY: start test build

start: $(VENV)/.learner
	@$(BIN)/course start

# The maintainers' suite: `tests/` by name (a bare `pytest` runs the learner's checks instead), in
# TEST_JOBS pytest-xdist workers, with the 25 slowest tests; PYTEST_ARGS adds options
# (`make test TEST_JOBS=0 PYTEST_ARGS="-k nbgrader -x"`: one process, the nbgrader tests only).
# Three workers on two cores: the nbgrader tests spend much of their time waiting on kernels and time
# limits, and a third worker fills it (extras/benchmarks/test-suite.md).
TEST_JOBS ?= 3
test: $(VENV)/.instructor
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -ra tests -n $(TEST_JOBS) --dist loadgroup --durations=25 $(PYTEST_ARGS)

build: $(VENV)/.instructor
	$(BIN)/course build

# pip's whole output goes to the log; the learner sees a line per stage and per download (pip draws
# no progress bar into a pipe), so that minutes of installing never look like a hang.
SHELL := bash
.SHELLFLAGS := -o pipefail -c
PROGRESS := awk '/^Collecting / && !seen++ { print "  resolving the requirements" } \
	/^ *Downloading / { n++; split($$2, name, "-") } \
	/^ *Downloading .*MB\)$$/ { print "  downloading " name[1] " " name[2] " " $$3 " " $$4 } \
	/^Installing collected packages/ { print "  installing the packages (torch takes the longest)" } \
	/^Successfully installed/ { print "  installed " NF - 2 " packages (" n + 0 " downloaded)" } { fflush() }'

# $(call install,EXTRA): a venv with a usable Python, then the course and its Jupyter settings.
define install
	@if [ "$(VENV_OLD)" = yes ]; then \
		echo "$(VENV) was made with $$($(BIN)/python --version 2>&1), but the course needs Python 3.11+: rebuilding it"; \
		rm -rf $(VENV); fi
	@test -n "$(PYTHON)" || { echo "No Python 3.11 or newer found. Install one, then: make PYTHON=/path/to/python3.11 $(MAKECMDGOALS)"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing the course$(1) into $(VENV) (a few minutes the first time; pip's log: $(LOG))"
	@SECONDS=0; echo "  upgrading pip"; { $(BIN)/python -m pip install --upgrade pip > $(LOG) 2>&1 \
		&& $(BIN)/python -m pip install -e '.$(1)' 2>&1 | tee -a $(LOG) | $(PROGRESS) \
		&& $(BIN)/python -m course.pairing >> $(LOG) 2>&1; } \
		|| { tail -n 25 $(LOG); echo "the install failed: the whole log is in $(LOG)"; exit 1; }; \
		echo "  the course's Jupyter settings installed; done in $$((SECONDS / 60)) min $$((SECONDS % 60)) s"
endef

$(VENV)/.learner: pyproject.toml $(wildcard jupyter/*/*.json jupyter/*/*/*.js)
	$(call install,)
	@touch $@

$(VENV)/.instructor: pyproject.toml $(wildcard jupyter/*/*.json jupyter/*/*/*.js)
	$(call install,[instructor])
	@touch $@ $(VENV)/.learner
