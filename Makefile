# One install step (.venv at the repository root), then search or test.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install search test test-slow lint clean

install: $(STAMP)

# torch first, pinned to the CPU build, so no other package pulls a CUDA build of torch.
$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[export,ray,dev,tracking]"
	touch $(STAMP)

search: install
	$(BIN)/nas search $(ARGS)

test: install
	$(BIN)/ruff check .
	$(BIN)/pytest -q
	$(BIN)/pytest -q -m slow

test-slow: install
	$(BIN)/pytest -q -m slow

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
