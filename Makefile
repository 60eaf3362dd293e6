# One install step (.venv at the repository root), then search or test.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install browser search test test-slow lint dist clean

install: $(STAMP) browser

# The report.html test drives the system's chromium (Playwright, no downloaded browser). Installed with apt-get
# when absent and possible (root); elsewhere that test is skipped with its reason.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  else \
	    echo "chromium is not installed and cannot be here (needs root and apt-get): the report.html browser test will be skipped"; \
	  fi; }

# torch first, pinned to the CPU build, so no other package pulls a CUDA build of torch.
$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[all,dev]"
	touch $(STAMP)

search: install
	$(BIN)/nas search $(ARGS)

test: install
	$(BIN)/ruff check .
	$(BIN)/pytest -q --durations=15
	$(BIN)/pytest -q -m slow

test-slow: install
	$(BIN)/pytest -q -m slow

lint: install
	$(BIN)/ruff check .

# The wheel and sdist of nas-engine in dist/, checked by twine (tests/test_packaging.py installs the wheel).
dist: install
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache dist build *.egg-info
