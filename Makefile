# Two commands do all set-up on a fresh machine: `make run` and `make test`.
# With DATABASE_URL / REDIS_URL set they use those; otherwise SQLite and a
# file-system Celery broker, so nothing but Python 3.11+ is needed.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MANAGE := $(BIN)/python manage.py

DEMO_ADMIN_EMAIL ?= admin@example.com
DEMO_ADMIN_PASSWORD ?= admin-demo-password

.PHONY: run install test lint format migrate demo-admin clean fuzz bench soak

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

# Local development: DEBUG on unless the environment says otherwise, and order
# processing every 15 s (not 120) so the demo orders move while you watch.
run: export DEBUG ?= 1
run: export ORDER_PROCESSING_INTERVAL ?= 15
run: $(STAMP)
	$(MANAGE) migrate --noinput
	@$(MANAGE) ensure_demo_admin --email "$(DEMO_ADMIN_EMAIL)" --password "$(DEMO_ADMIN_PASSWORD)"
	@$(MANAGE) seed_demo --orders 20 --top-up
	@echo ""
	@echo "  Orders on http://127.0.0.1:8000  (API docs /api/docs/, admin /admin/)"
	@echo "  Admin login: $(DEMO_ADMIN_EMAIL) / $(DEMO_ADMIN_PASSWORD)"
	@echo "  Ctrl-C stops the web server, the worker and beat."
	@echo ""
	$(BIN)/honcho start -f Procfile

test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

# Load benchmark on PostgreSQL + Redis (see bench/run.py); the first run seeds
# a million orders (a few minutes). BENCH_ARGS="--quick" for a short smoke run.
bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# Soak test, run by hand (not in CI): the whole stack (gunicorn, Celery worker
# and beat, PostgreSQL, Redis) under mixed load for 10 minutes, then the stock
# and order invariants checked against the database (see bench/soak.py).
# SOAK_ARGS="--minutes 1" for a smoke run.
soak: $(STAMP)
	$(BIN)/python bench/soak.py $(SOAK_ARGS)

# schemathesis against /api/schema/ as staff and as a customer (needs
# PostgreSQL and Redis on 127.0.0.1, as .ci/run starts them).
fuzz: $(STAMP)
	bash .ci/fuzz

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .celery staticfiles db.sqlite3 db.sqlite3-*
