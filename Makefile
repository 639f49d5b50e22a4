# Recipient responses: `make run` (service on SQLite) and `make test` (every test, both stores).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# pytest workers of `make test` (pytest-xdist; 0: one process). The tests wait on PostgreSQL, SQLite's disk and the
# processes they start more than they compute: two workers overlap those waits, on two cores too
TEST_WORKERS ?= 2
# free PostgreSQL connections `make test` wants (a test's pool, follower and admin connection, for each worker)
PG_TEST_CONNECTIONS ?= $(shell echo $$(( 10 * ($(TEST_WORKERS) > 0 ? $(TEST_WORKERS) : 1) )))

.PHONY: run test check bench postgres chromium fuzz mutation clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/responses serve --host $(HOST) --port $(PORT)

postgres:
	@if command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; then \
	  echo "PostgreSQL is up"; \
	elif command -v pg_ctlcluster >/dev/null; then \
	  echo "starting PostgreSQL"; \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql | sort -V | tail -n 1) main start; \
	  for i in $$(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done; \
	else \
	  echo "PostgreSQL is not installed: the PostgreSQL tests will fail" >&2; \
	fi
	@# up is not enough: a server short of connections fails every test with a pool timeout; say so first
	@if command -v psql >/dev/null; then \
	  out=$$(PGCONNECT_TIMEOUT=5 psql -h 127.0.0.1 -p 5432 -U postgres -d postgres -Atc \
	    "SELECT current_setting('max_connections') || ' ' || (SELECT count(*) FROM pg_stat_activity)" 2>&1); \
	  case "$$out" in \
	    *"too many"*|*"remaining connection slots"*) \
	      echo "PostgreSQL refuses: too many connections (max_connections ?, in use: all): $$out" >&2; \
	      echo "end the idle sessions, stop other test runs, or raise max_connections" >&2; exit 1;; \
	    [0-9]*) set -- $$out; \
	      if [ $$2 -ge $$(($$1 - $(PG_TEST_CONNECTIONS))) ]; then \
	        echo "PostgreSQL refuses: too many connections (max_connections $$1, in use $$2; a test needs about $(PG_TEST_CONNECTIONS))" >&2; \
	        echo "end the idle sessions, stop other test runs, or raise max_connections" >&2; exit 1; \
	      fi;; \
	    *timeout*) echo "PostgreSQL is slow: no connection within 5 s ($$out)" >&2;; \
	  esac; \
	fi

# Debian's Chromium for the browser tests (/docs offline): installed when missing, quietly
chromium:
	@command -v chromium >/dev/null || { echo "installing Debian's chromium (browser tests)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The checks that keep the layout: lint and format (ruff), types of the inner layers (mypy --strict), layer contracts (import-linter)
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy domain application projections
	$(BIN)/lint-imports

test: $(STAMP) check postgres chromium
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS)

# The benchmark: CONTRACT §10's targets; writes var/bench.json. QUICK=1: smaller sizes, under 5 minutes
QUICK ?=
bench: $(STAMP) postgres
	QUICK=$(QUICK) $(BIN)/python -m bench

# The schemathesis contract run with many more examples an operation (random seeds, no time bound)
FUZZ_EXAMPLES ?= 400
fuzz: $(STAMP) postgres
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -q -s tests/contract

# mutmut over domain/ against tests/unit ([tool.mutmut] in pyproject.toml), from scratch; prints the score
MUTMUT_CHILDREN ?= 2
mutation: $(STAMP)
	rm -rf mutants
	$(BIN)/mutmut run --max-children $(MUTMUT_CHILDREN)
	@$(BIN)/mutmut export-cicd-stats >/dev/null
	@$(BIN)/python -c 'import json; s = json.load(open("mutants/mutmut-cicd-stats.json")); k = s["killed"] + s["timeout"]; \
	  print("mutation score: {} killed of {} mutants = {:.1f} % (of them timeouts {}; survived {}, no tests {})".format( \
	  k, s["total"], 100 * k / s["total"], s["timeout"], s["survived"], s["no_tests"]))'
	@$(BIN)/mutmut results

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
