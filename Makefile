# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The venv is rebuilt only when the lock file changes.
STAMP := $(VENV)/.installed

.PHONY: run test lint types pytest lock clean

$(BIN)/uv:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check 'uv>=0.4,<1'

# Bytecode is compiled at install: where PYTHONDONTWRITEBYTECODE is set (CI's machines), every
# process the tests start would otherwise compile the whole import graph again (about 4 s).
$(STAMP): requirements.lock pyproject.toml | $(BIN)/uv
	$(BIN)/uv pip sync --quiet --compile-bytecode --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	$(BIN)/python -m compileall -q src
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/signoff db upgrade
	$(BIN)/signoff serve

test: $(STAMP)
	@start=$$(date +%s); \
	$(BIN)/ruff check . && $(BIN)/ruff format --check .; s=$$?; \
	echo "== lint: $$(( $$(date +%s) - start ))s"; [ $$s -eq 0 ] || exit $$s; \
	start=$$(date +%s); $(BIN)/mypy; s=$$?; \
	echo "== types: $$(( $$(date +%s) - start ))s"; [ $$s -eq 0 ] || exit $$s; \
	start=$$(date +%s); $(BIN)/pytest -n 2 -q $(PYTEST_ARGS); s=$$?; \
	echo "== tests: $$(( $$(date +%s) - start ))s"; exit $$s

# Regenerate the lock files after changing dependencies in pyproject.toml; the runtime one (the
# container image's: no development tools) takes the versions of the full one.
lock: | $(BIN)/uv
	$(BIN)/uv pip compile --quiet --python-version 3.11 --extra dev pyproject.toml -o requirements.lock
	$(BIN)/uv pip compile --quiet --python-version 3.11 --constraint requirements.lock pyproject.toml -o requirements-runtime.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
