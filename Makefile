# POCare — two commands: `make demo` and `make test`. Both set everything up and are safe to re-run.

SHELL  := /bin/bash
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PG_URL ?= postgres://postgres@127.0.0.1:5432/postgres
export POCARE_VAR_DIR ?= $(CURDIR)/var

.PHONY: demo test lane-sqlite lane-postgres suites install system-libs messages lint typecheck unit-sqlite unit-postgres browser api-fuzz traceability bench lock clean

$(STAMP): requirements/dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# WeasyPrint (PDF dossiers and reports) needs Pango from the operating system. Installed with
# apt-get when missing and we may (root on Debian/Ubuntu); otherwise PDF downloads explain themselves.
system-libs:
	@if ! ldconfig -p 2>/dev/null | grep -q libpangoft2-1.0; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing Pango for PDF output (apt-get)"; \
	    apt-get update -qq && apt-get install -y -qq libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core >/dev/null; \
	  else echo "NOTE: Pango is missing; PDF exports will answer 503 until it is installed (apt-get install libpangoft2-1.0-0)."; fi; \
	fi
	@command -v msgfmt >/dev/null || echo "NOTE: GNU gettext is missing: the committed catalogues work, but 'make messages' needs it (apt-get install gettext)."

## make messages: extract the messages of the patients app and of the list controls it shares (core) into
## the es/pt catalogues and compile them (src/pocare/locale; docs/patients.md, "Languages"). Translate the
## new empty msgstr, then run it again.
I18N_SKIP := accounts analytics custody demo jobs ledger manufacturing masterfile network ops planning quality \
             release trail training web var
messages: $(STAMP)
	cd src/pocare && $(CURDIR)/$(BIN)/pocare makemessages -l es -l pt --no-wrap --no-location -i "*/migrations/*" \
	  $(foreach app,$(I18N_SKIP),-i "$(app)/*" -i "$(app)") -i settings.py -i cli.py -i urls.py -i api_urls.py -i asgi.py -i wsgi.py
	cd src/pocare && $(CURDIR)/$(BIN)/pocare compilemessages -l es -l pt

## make demo: install, migrate the embedded SQLite database under var/, load the demo network, serve it
demo: $(STAMP) system-libs
	mkdir -p $(POCARE_VAR_DIR)
	$(BIN)/pocare migrate --no-input -v 0
	$(BIN)/pocare demo
	$(BIN)/pocare serve --host 127.0.0.1 --port 8000 --with-worker

## make test: lint, types, the suite on SQLite and PostgreSQL, the API fuzzer and the browser tests.
## pytest uses one core: the checks run in two lanes side by side (about the same length each), and each
## lane's output is printed whole when it ends. POCARE_SERIAL_SUITES=1 runs everything in turn.
## The whole output is kept in var/make-test.log; when a check fails, what failed is printed again at the very
## end (a CI log is often read from its tail, and the lane that failed may have printed first).
test: $(STAMP) system-libs
	@mkdir -p $(POCARE_VAR_DIR)
	@set -o pipefail; \
	$(MAKE) --no-print-directory $(if $(POCARE_SERIAL_SUITES),,-j2 --output-sync=target) lane-sqlite lane-postgres \
	  2>&1 | tee $(POCARE_VAR_DIR)/make-test.log || { status=$$?; \
	  echo; echo "make test FAILED. What failed (the whole output: $(POCARE_VAR_DIR)/make-test.log):"; \
	  grep -E '^(FAILED|ERROR) |^=+ .*(failed|error).* =+$$|\*\*\*|: error: |^Found [0-9]+ error|stale| [1-9][0-9]* broken|BROKEN' \
	    $(POCARE_VAR_DIR)/make-test.log | head -n 150; exit $$status; }
	@echo "make test: every check passed."

lane-sqlite: $(STAMP)
	$(MAKE) --no-print-directory lint typecheck traceability
	$(MAKE) --no-print-directory unit-sqlite
	$(MAKE) --no-print-directory browser

lane-postgres: $(STAMP)
	$(MAKE) --no-print-directory unit-postgres
	$(MAKE) --no-print-directory api-fuzz

# The two database suites share nothing (each its own database) and pytest uses one core, so they run
# side by side; each one's output is printed whole when it ends. POCARE_SERIAL_SUITES=1 runs them in turn.
suites: $(STAMP)
	$(MAKE) --no-print-directory $(if $(POCARE_SERIAL_SUITES),,-j2 --output-sync=target) unit-sqlite unit-postgres

lint: $(STAMP)
	$(BIN)/ruff check
	$(BIN)/python tools/lint_domain.py
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy src

traceability: $(STAMP)
	$(BIN)/python tools/traceability.py --check

unit-sqlite: $(STAMP)
	mkdir -p $(POCARE_VAR_DIR)
	POCARE_TEST_SQLITE=$(POCARE_VAR_DIR)/test-suite.sqlite3 DATABASE_URL= \
	  $(BIN)/pytest -m "not browser" -q --durations=25

unit-postgres: $(STAMP)
	@if $(BIN)/python tools/pg_ready.py "$(PG_URL)"; then \
	  DATABASE_URL="$(PG_URL)" $(BIN)/pytest -m "not browser" -q --durations=25; \
	elif [ -n "$$POCARE_REQUIRE_POSTGRES" ]; then \
	  echo "PostgreSQL does not answer at $(PG_URL), and POCARE_REQUIRE_POSTGRES is set." >&2; exit 1; \
	else \
	  echo "SKIPPED: PostgreSQL does not answer at $(PG_URL); the suite ran on SQLite only."; \
	fi

browser: $(STAMP) /usr/bin/chromium
	POCARE_TEST_SQLITE=$(POCARE_VAR_DIR)/test-browser.sqlite3 DATABASE_URL= \
	  $(BIN)/pytest -m browser -q

/usr/bin/chromium:
	@echo "Installing Debian's chromium for the browser tests (Playwright drives it; no browser download)."
	apt-get update -qq && apt-get install -y -qq chromium

api-fuzz: $(STAMP)
	$(BIN)/python tools/api_fuzz.py

bench: $(STAMP)
	$(BIN)/python benchmarks/ledger.py
	$(BIN)/python benchmarks/ebr.py
	$(BIN)/python benchmarks/release.py
	$(BIN)/python benchmarks/analytics.py
	$(BIN)/python benchmarks/planning.py
	$(BIN)/python benchmarks/masterfile_yaml.py
	$(BIN)/python benchmarks/charts.py
	$(BIN)/python benchmarks/ledger_lookup.py
	$(BIN)/python benchmarks/anchor.py
	$(BIN)/python benchmarks/pages_at_scale.py
	$(BIN)/python benchmarks/backup.py
	$(BIN)/python benchmarks/jobs.py
	$(BIN)/python benchmarks/patients.py
	$(BIN)/python benchmarks/supply.py
	$(BIN)/python benchmarks/costs.py

lock:
	UV_SYSTEM_CERTS=1 uv pip compile pyproject.toml -q --python-version 3.11 -o requirements/base.txt
	UV_SYSTEM_CERTS=1 uv pip compile pyproject.toml -q --extra dev --python-version 3.11 -o requirements/dev.txt

clean:
	rm -rf $(VENV) var
