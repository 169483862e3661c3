# Two commands on a fresh machine with only python3: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint typecheck security bench bench-mcp bench-compare bench-tls bench-notify bench-web quality scale lock clean

$(BIN)/python:
	@echo "Creating the virtual environment in $(VENV)…"
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.run: $(BIN)/python requirements.lock pyproject.toml
	@echo "Installing llmdocs and its dependencies into $(VENV)."
	@echo "The first time, llama-cpp-python compiles llama.cpp: about 10-15 minutes on 2 cores,"
	@echo "with no output until it is done. Later runs start in seconds."
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	@echo "Installed."
	touch $@

$(VENV)/.dev: $(VENV)/.run requirements-dev.lock
	@echo "Installing the development tools (pytest, ruff, mypy) into $(VENV)…"
	$(BIN)/pip install -q -r requirements-dev.lock
	touch $@

run: $(VENV)/.run
	@echo "Starting llmdocs with the worked example (the model loads on first use)…"
	$(BIN)/llmdocs up --example

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests bench

typecheck: $(VENV)/.dev
	$(BIN)/mypy

# bandit on src (skips and their reasons: [tool.bandit] and inline # nosec), and pip-audit
# on the lock: a known vulnerability fails; an unreachable vulnerability service is said
security: $(VENV)/.dev
	$(BIN)/bandit -q -c pyproject.toml -r src
	$(BIN)/python -m llmdocs.compliance requirements.lock

test: $(VENV)/.dev
	bash scripts/system-deps.sh
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(MAKE) security
	$(BIN)/pytest -q

bench: $(VENV)/.dev
	bash scripts/system-deps.sh
	$(BIN)/python bench/events.py

# search_documents and get_document over MCP (streamable HTTP) vs the doc-store's API.
bench-mcp: $(VENV)/.dev
	PYTHONPATH=bench $(BIN)/python bench/mcp_vs_http.py

# Events to signed webhooks at 8 subscriptions, beside a bare consumer (bench/notify.py).
bench-notify: $(VENV)/.dev
	$(BIN)/python bench/notify.py

# One bench script at BASE and here, side by side (bench/README.md).
SCRIPT ?= events.py
bench-compare: $(VENV)/.dev
	@test -n "$(BASE)" || { echo "usage: make bench-compare BASE=<rev> [SCRIPT=x.py] [ARGS=...]"; exit 2; }
	bash scripts/system-deps.sh
	$(BIN)/python bench/compare.py $(BASE) $(SCRIPT) -- $(ARGS)

# Documents for real specs with the local model, measured against widdershins (node).
quality: $(VENV)/.dev
	bash scripts/node-deps.sh
	$(BIN)/python bench/quality.py

# Documents per second on one process vs separate processes (PostgreSQL, Redis, two
# doc-store replicas), the model a fake that answers at once: about 10 minutes.
scale: $(VENV)/.dev
	bash scripts/system-deps.sh
	$(BIN)/python bench/scale.py

# What mutual TLS adds to a doc-store and a gateway request, against plain HTTP.
bench-tls: $(VENV)/.dev
	$(BIN)/python bench/tls.py

# The web portal's document and search pages beside the doc-store's JSON, 16 clients.
bench-web: $(VENV)/.dev
	$(BIN)/python bench/web.py

# Re-pin after changing dependencies in pyproject.toml (needs uv: pip install uv).
lock:
	uv pip compile pyproject.toml --python-version 3.11 -o requirements.lock
	uv pip compile pyproject.toml --extra dev --python-version 3.11 -o requirements-dev.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
