# The two commands of README.md: `make run` and `make test`. `make bench` for benchmarks.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)
PYTEST_WORKERS ?= 2
SCENARIO ?=

.PHONY: install run test lint services bench clean

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

# Embedded by default (SQLite + filesystem broker); set DATABASE_URL / REDIS_URL to use
# PostgreSQL and Redis instead.
run: install
	DEBUG=$${DEBUG:-true} $(PY) manage.py migrate --noinput
	DEBUG=$${DEBUG:-true} $(PY) manage.py seed_demo --if-empty
	DEBUG=$${DEBUG:-true} PY=$(PY) scripts/run.sh

services:
	scripts/ensure_services.sh

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

test: install services lint
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --create-db $(PYTEST_ARGS)

bench: install services
	$(PY) bench/run.py $(if $(SCENARIO),--scenario $(SCENARIO),)

clean:
	rm -rf $(VENV) var db.sqlite3 staticfiles
