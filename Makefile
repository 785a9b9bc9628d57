# The two commands of README.md: `make run` and `make test`. `make bench` for benchmarks,
# `make test-clocks` for the suite at pinned clocks.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)
PYTEST_WORKERS ?= 2
SCENARIO ?=

.PHONY: install run test test-clocks lint services bench clean

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

# Embedded by default (SQLite + filesystem broker); set DATABASE_URL / REDIS_URL to use
# PostgreSQL and Redis instead.
# SITE_URL (unsubscribe links, the demo's login address) follows HOST and PORT unless set.
RUN_ENV = DEBUG=$${DEBUG:-true} SITE_URL=$${SITE_URL:-http://$${HOST:-127.0.0.1}:$${PORT:-8000}}
run: install
	$(RUN_ENV) $(PY) manage.py migrate --noinput
	$(RUN_ENV) $(PY) manage.py seed_demo --if-empty
	$(RUN_ENV) PY=$(PY) scripts/run.sh

services:
	scripts/ensure_services.sh

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

test: install services lint
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --create-db $(PYTEST_ARGS)

# The suite with the clock pinned (CRM_TEST_CLOCK, tests/clock.py) near midnight, in
# TIME_ZONE (UTC by default): the last and the first day of a year, of a month (a February).
# Every test starts at the moment, so no test passes only because of today's date. The
# browser tests run at the moments of TEST_CLOCKS_BROWSER only (the first of a year and a
# month), which keeps the four runs to a few minutes.
TEST_CLOCKS ?= 2026-12-31T23:55:00 2027-01-01T00:05:00 2027-02-28T23:55:00 2027-03-01T00:05:00
TEST_CLOCKS_BROWSER ?= 2027-01-01T00:05:00

test-clocks: install services
	@set -e; for moment in $(TEST_CLOCKS); do \
	  case " $(TEST_CLOCKS_BROWSER) " in *" $$moment "*) marks="";; *) marks="not browser";; esac; \
	  echo "== CRM_TEST_CLOCK=$$moment $${marks:+(-m '$$marks')}"; \
	  CRM_TEST_CLOCK=$$moment $(VENV)/bin/pytest -n $(PYTEST_WORKERS) --create-db \
	    -m "$$marks" $(PYTEST_ARGS); \
	done

bench: install services
	$(PY) bench/run.py $(if $(SCENARIO),--scenario $(SCENARIO),)

clean:
	rm -rf $(VENV) var db.sqlite3 staticfiles
