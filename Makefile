# Two commands on a fresh machine (see README):  make demo   and   make test
# Each one creates .venv and installs the project from its own files first.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: demo test lint typecheck pytest bench lock clean

$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install -c requirements.lock -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tracereplay demo

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy cannot follow setuptools' editable import hook, so lay the sources out as they are
# installed (tracereplay/{capture,models,replay,compare,demo}) in a tree of symlinks and check that.
typecheck: $(STAMP)
	rm -rf build/typecheck && mkdir -p build/typecheck/tracereplay
	for f in tracereplay/*; do ln -s ../../../$$f build/typecheck/tracereplay/; done
	for d in capture models replay compare demo; do ln -s ../../../$$d build/typecheck/tracereplay/$$d; done
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python bench/bench_writer.py
	$(BIN)/python bench/bench_target.py

# Re-resolve the pinned tree after changing a pin in pyproject.toml.
lock:
	rm -rf build/lockenv && $(PYTHON) -m venv build/lockenv
	build/lockenv/bin/python -m pip install -q '.[dev]'
	( echo '# Full dependency tree, pinned. Regenerate: make lock (see Makefile).'; \
	  build/lockenv/bin/python -m pip freeze --exclude-editable | grep -v '^tracereplay' ) > requirements.lock

clean:
	rm -rf $(VENV) build .mypy_cache .pytest_cache .ruff_cache
