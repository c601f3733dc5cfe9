# Two commands on a fresh machine: `make run` (Airflow with our DAGs, roadmap running on the
# compressed clock) and `make test`. `make install` builds only the virtualenv.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install run test lint bench clean browser

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt constraints.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip==25.3
	$(BIN)/pip install -q -r requirements.txt -c constraints.txt
	$(BIN)/pip install -q --no-deps -e .
	touch $@

run: install
	bash scripts/run.sh

test: install browser
	$(BIN)/pytest -q -p no:cacheprovider -n 2 --maxschedchunk=1

# The Control Center's browser test drives Debian's chromium through chromium-driver.
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  echo "== installing chromium and chromium-driver (Debian) for the browser test"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q chromium chromium-driver >/dev/null; }; }

lint: install
	$(BIN)/ruff check include dags plugins tests bench

bench: install
	$(BIN)/python bench/parse.py

clean:
	rm -rf $(VENV) .airflow
