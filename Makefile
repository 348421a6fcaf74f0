# Each target creates and fills .venv on first use; later runs skip straight to the work.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock | sha256sum | cut -c1-12)

.PHONY: demo test test-main test-serial lint bench format clean

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/hub demo

# Everything; the tests that cut or restart real services (marked serial) last, in a run of
# their own. `make test-main` and `make test-serial` are the two halves (.ci/run uses them).
test: $(STAMP)
	$(BIN)/pytest -n 2 -m "not serial and not single_process"
	$(BIN)/pytest -m "serial or single_process"

test-main: $(STAMP)
	$(BIN)/pytest -n 2 -m "not serial and not single_process"

test-serial: $(STAMP)
	$(BIN)/pytest -m "serial or single_process"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python bench/order_reads.py
	$(BIN)/python bench/shopify_pull.py
	$(BIN)/python bench/etsy_stock.py
	$(BIN)/python bench/webhooks.py
	$(BIN)/python bench/webhook_flood.py
	$(BIN)/python bench/stock_fanout.py
	$(BIN)/python bench/imaging.py

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
