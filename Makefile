# sessionio: the two commands a newcomer needs are `make run` and `make test` (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: venv run test test-deps lint typecheck layers unit bench bench-deps bench-quick clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

## The main job: watch every file operation on this machine with its requestor process and session.
run: $(STAMP)
	$(BIN)/sessionio watch $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP)
	$(BIN)/mypy --strict

layers: $(STAMP)
	$(BIN)/lint-imports

## The D-Bus tier runs python-dbusmock's logind template on a private dbus-daemon; live tests build
## tiny C helpers. Installed here when missing (needs root, as the live tests do).
test-deps:
	@dpkg -s dbus-daemon python3-dbusmock gcc >/dev/null 2>&1 || \
		{ apt-get update -q && apt-get install -y -q --no-install-recommends dbus-daemon python3-dbusmock gcc; }

## Everything CI runs: lint, types, the layer contract, then all three test tiers (pure, live, D-Bus).
test: test-deps lint typecheck layers
	SESSIONIO_LIVE=require $(BIN)/pytest -q

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

## Benchmarks need root, gcc, and the anchors they compare with (fapolicyd, fatrace).
bench-deps: $(STAMP)
	$(BIN)/python -c 'import matplotlib' 2>/dev/null || $(BIN)/pip install --quiet -e '.[dev,bench]'
	dpkg -s fapolicyd fatrace >/dev/null 2>&1 || { apt-get update && apt-get install -y fapolicyd fatrace; }

bench: bench-deps
	$(BIN)/python -m bench --repeats 5 --chart

bench-quick: bench-deps
	$(BIN)/python -m bench --quick

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .import_linter_cache bench/build
