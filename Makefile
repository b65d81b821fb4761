# session-promotions: `make run` runs the job on the bundled sample; `make test` runs every test.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
# Bytewax 0.21.1 ships wheels for CPython <= 3.12 only. Probed once, quietly: a pyenv shim for a
# version that is not installed prints "command not found" (on stdout or stderr) and fails.
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell for p in python3.12 python3.11 python3; do \
	if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(not (3,11) <= sys.version_info[:2] < (3,13))' >/dev/null 2>&1 </dev/null; then echo $$p; break; fi; done)
endif
STAMP := $(VENV)/.installed
# The Rust kernel (kernel/, Python module promotions_kernel), built by maturin (pinned in
# kernel/pyproject.toml, fetched from PyPI by pip) with the machine's cargo and the committed
# Cargo.lock. Its own stamp: rebuilt when the crate's sources, manifest or lock change.
KERNEL_STAMP := $(VENV)/.kernel
KERNEL_INPUTS := kernel/Cargo.toml kernel/Cargo.lock kernel/pyproject.toml $(shell find kernel/src -type f 2>/dev/null)
# The cargo checks run against the venv's interpreter (pyo3's build script looks for one).
CARGO_ENV := PYO3_PYTHON=$(abspath $(PY))
NO_CARGO := cargo not found: install Rust (https://rustup.rs) to build the kernel, or run with PROMO_ENGINE=python
# Image: podman here (no Docker daemon), docker where one answers. See README, "Docker".
IMAGE ?= session-promotions:local

.PHONY: install kernel run test test-unit test-kernel bench image kafka-start kafka-stop clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "need Python 3.11 or 3.12 (bytewax 0.21.1 has no wheels for 3.13+)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==24.3.1
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

# Without cargo: one line, and a failure, unless PROMO_ENGINE=python says the kernel is not wanted
# (then nothing is stamped, so the kernel is built once cargo is there).
$(KERNEL_STAMP): $(STAMP) $(KERNEL_INPUTS)
	@if ! command -v cargo >/dev/null; then \
		if [ "$$PROMO_ENGINE" = python ]; then echo "make: $(NO_CARGO) (skipped: PROMO_ENGINE=python)" >&2; exit 0; fi; \
		echo "make: $(NO_CARGO)" >&2; exit 1; fi; \
	set -x; $(PY) -m pip install --quiet --no-deps --force-reinstall ./kernel && touch $(KERNEL_STAMP)

install: $(STAMP) $(KERNEL_STAMP)

kernel: $(KERNEL_STAMP)

run: $(STAMP) $(KERNEL_STAMP)
	$(PY) -m bytewax.run dataflows.promotions

# The crate's own tests need no Python (pyo3 is behind the `python` feature); clippy checks the
# bindings too. Both use the committed Cargo.lock as it is.
test-kernel: $(STAMP)
	@if ! command -v cargo >/dev/null; then \
		if [ "$$PROMO_ENGINE" = python ]; then echo "make: $(NO_CARGO) (skipped: PROMO_ENGINE=python)" >&2; exit 0; fi; \
		echo "make: $(NO_CARGO)" >&2; exit 1; fi; \
	set -x; cd kernel && cargo test --locked && $(CARGO_ENV) cargo clippy --locked --features python -- -D warnings

test: $(STAMP) $(KERNEL_STAMP) test-kernel
	$(PY) -m pytest -q

test-unit: $(STAMP) $(KERNEL_STAMP)
	$(PY) -m pytest -q tests/unit tests/flow

bench: $(STAMP) $(KERNEL_STAMP)
	$(PY) -m bench.run

# Builds the image with the kernel compiled inside it (Dockerfile's kernel stage). Where no
# registry is reachable (this machine), the base comes from deploy/image/base.sh (debootstrap).
image:
	IMAGE=$(IMAGE) bash deploy/image/build.sh

kafka-start: $(STAMP)
	$(PY) deploy/kafka-local/kafka_local.py start

kafka-stop:
	$(PY) deploy/kafka-local/kafka_local.py stop

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info kernel/target kernel/dist
