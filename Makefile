# Two commands do everything on a fresh machine (Python 3.10+ and make; nothing else needed):
#   make book [PROFILE=full|ci|paper]   install what is missing, execute every chapter, render _build/html
#   make test                           install what is missing (Chromium too), lint, run the whole test suite
PYTHON ?= python3
PROFILE ?= full
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: book test browser bench clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

book: $(STAMP)
	$(PY) -m chartlib.book --profile $(PROFILE)

# Chromium comes from Debian's package (Playwright's own browser download does not work offline).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -q chromium >/dev/null 2>&1 || { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q chromium >/dev/null; }; }
	@command -v chromium >/dev/null 2>&1 || { echo "chromium could not be installed: install Debian's 'chromium' package"; exit 1; }

test: $(STAMP) browser
	$(PY) -m ruff check .
	$(PY) -m pytest tests

bench: $(STAMP)
	$(PY) -m benchmarks

clean:
	rm -rf _build .stage
