# session-promotions: `make run` runs the job on the bundled sample; `make test` runs every test.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# Bytewax 0.21.1 ships wheels for CPython <= 3.12 only.
PYTHON ?= $(shell for p in python3.12 python3.11 python3; do \
	if command -v $$p >/dev/null && $$p -c 'import sys; sys.exit(not (3,11) <= sys.version_info[:2] < (3,13))'; then echo $$p; break; fi; done)
STAMP := $(VENV)/.installed

.PHONY: install run test test-unit bench kafka-start kafka-stop clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "need Python 3.11 or 3.12 (bytewax 0.21.1 has no wheels for 3.13+)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==24.3.1
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m bytewax.run dataflows.promotions

test: $(STAMP)
	$(PY) -m pytest -q

test-unit: $(STAMP)
	$(PY) -m pytest -q tests/unit tests/flow

bench: $(STAMP)
	$(PY) -m bench.run

kafka-start: $(STAMP)
	$(PY) deploy/kafka-local/kafka_local.py start

kafka-stop:
	$(PY) deploy/kafka-local/kafka_local.py stop

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
