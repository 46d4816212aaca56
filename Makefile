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

.PHONY: run install test test-fast lint format clean fuzz bench bench-scale soak

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

# A local, git-ignored .env for development (as cookiecutter-django does):
# DEBUG on and a generated SECRET_KEY, so that `.venv/bin/python manage.py ...`
# and `celery ...` work outside `make run` too. Written once, never overwritten.
.env:
	@printf '# Local development settings, written by `make run` (git-ignored).\nDEBUG=1\nWEBHOOK_ALLOW_PRIVATE_TARGETS=1\nSECRET_KEY=%s\n' \
		"$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')" > .env
	@echo "Wrote .env (DEBUG=1 and a generated SECRET_KEY)"

# Local development: SQLite, a file-system broker, the demo data, and the web
# server, a Celery worker per queue and beat under honcho (Procfile). Ctrl-C
# stops them all.
run: $(STAMP) .env
	$(MANAGE) migrate --noinput
	@$(MANAGE) ensure_demo_admin --email "$(DEMO_ADMIN_EMAIL)" --password "$(DEMO_ADMIN_PASSWORD)"
	@$(MANAGE) seed_demo --orders 20 --top-up
	@echo ""
	@echo "  Orders on http://127.0.0.1:8000  (API docs /api/docs/, admin /admin/)"
	@echo "  Admin login:    $(DEMO_ADMIN_EMAIL) / $(DEMO_ADMIN_PASSWORD)"
	@echo "  Customer login: customer@example.com / customer-demo-password"
	@echo "  Ctrl-C stops the web server, the workers and beat."
	@echo ""
	@$(BIN)/python bin/dev

# The whole suite, on every core (pytest-xdist). PYTEST_ARGS="--lf" reruns
# only what failed last time; `make test-fast` leaves out the slow tests
# (processes, servers, the browser, the property-based stock test).
test: $(STAMP)
	$(BIN)/pytest -n auto $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(BIN)/pytest -n auto -m "not slow" --ff $(PYTEST_ARGS)

# Load benchmark on PostgreSQL + Redis (see bench/run.py), create, detail and
# list side by side with a typical DRF build of the same API (bench/baseline);
# the first run seeds a million orders for each (a few minutes).
# BENCH_ARGS="--quick" for a short smoke run, "--no-baseline" for the project alone.
bench: $(STAMP)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

# Scale rehearsal on this machine (see bench/scale.py): one web group against
# two behind nginx, each without and with the streaming replica
# (bin/pg-replica), and one `orders` worker against two; results in
# bench/results/scale-last.md. BENCH_ARGS="--quick" for a smoke run.
bench-scale: $(STAMP)
	$(BIN)/python bench/scale.py $(BENCH_ARGS)

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
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .celery staticfiles db.sqlite3 db.sqlite3-*
	@echo "(.env is kept: delete it yourself to get a new SECRET_KEY)"
