# masterless — every target creates .venv when missing and installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
LINT_PATHS := $(wildcard actors transport tests examples benchmarks)

.PHONY: demo test lint typecheck pytest docs docs-build bench bench-smoke bench-peers soak clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,docs,fast]'
	@rm -f $(VENV)/.installed-*
	@touch $@

demo: $(STAMP)
	$(PY) examples/demo.py

# pytest runs last so its summary line closes the output.
test: lint typecheck docs-build pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)

typecheck: $(STAMP)
	$(VENV)/bin/mypy --strict actors transport

pytest: $(STAMP)
	$(PY) -X dev -m pytest -q

docs-build: $(STAMP)
	@if [ -f mkdocs.yml ]; then NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet --site-dir site; fi

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve

bench: $(STAMP)
	$(PY) -m benchmarks

bench-smoke: $(STAMP)
	$(PY) -m benchmarks --smoke

# The peers `make bench` compares with (Ray, Pykka, Thespian, xoscar; matplotlib for the plot)
# go into the venv, and the seed library (npm) into benchmarks/node_modules. The bench itself
# never installs a Python package: an absent peer's row says skipped, and why.
bench-peers: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	@MASTERLESS_BENCH_INSTALL=1 $(PY) -m benchmarks._peers --install-seed

soak: $(STAMP)
	SOAK_SECONDS=60 $(PY) -m pytest -q -m soak

clean:
	rm -rf $(VENV) site .pytest_cache .mypy_cache .ruff_cache
