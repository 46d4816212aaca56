"""Load benchmark of the Orders API, its background processing and the database
ceiling under it, on this machine, in one run (`make bench`).

What it measures, each against a target (the final table says met or not):

- create: POST /api/v1/orders/ (3 distinct random demo products, quantity 1)
  as one of 64 customers picked at random, each request with its own
  Idempotency-Key; expects 201. Also 100-line orders (one line per bench
  product): their query count must not grow with the lines.
- detail: GET /api/v1/orders/<id>/ as staff over a sample of 2,000 orders.
- list: GET /api/v1/orders/?page_size=20 as staff (every order, newest first,
  with items) on a million orders and again on 10,000: page 1 should cost the
  same however big the table is.
- queries: SQL statements per request of each kind, through Django's test
  client with a real Authorization header and no test transaction around it,
  so the count is what production runs.
- processing: orders.processing.process_pending_orders over 100,000 pending
  orders in a fresh process: orders per second, and its memory after the
  first batch against the end of the run (it should stay flat).
- pgbench: the database work of placing an order (3 guarded stock updates,
  the order, its lines) as plain SQL, 8 clients: the ceiling that create
  could reach if Django, DRF and HTTP cost nothing.
- baseline: create, detail and list are also run against bench/baseline, a
  typical Django + DRF build of the same API (nested ModelSerializer,
  select_for_update per line, simplejwt, PageNumberPagination), on its own
  database with as many products, customers and orders, under the same
  gunicorn settings, by the same wrk scripts. Project and baseline take turns
  (project, baseline, project, ...; --rounds, 3 by default, 1 with --quick),
  only one loaded at a time; the table shows the medians of the rounds and
  project / baseline. Its SQL statements per request are counted as the
  project's are. --no-baseline leaves it out (the targets are then absolute).

The web scenarios run against gunicorn with production settings (DEBUG off,
gunicorn.conf.py, Redis for throttling, one access log line per request) on
127.0.0.1, loaded by wrk for --duration seconds after --warmup seconds. Any
status other than the expected one, socket error or ERROR log line is
reported. Beside wrk's figures it prints, per scenario, the time the app
itself took (from the access log) and the CPU time per request of gunicorn
and of its PostgreSQL backends (with the PostgreSQL processes that ended
meanwhile: parallel query workers), with how busy the machine was and how much
of that was other work: on a shared machine req/s moves, CPU per request much less.

Databases: orders_bench_1m and orders_bench_10k are seeded once (`seed_demo
--top-up`: later runs skip it) and keep the orders the runs place, as do the
baseline's orders_bench_baseline (1M, beside orders_bench_1m) and
orders_bench_baseline_10k (--quick; bench/baseline/seed.sql tops them up);
orders_bench_proc and orders_bench_pgbench are made afresh each run. The app
on orders_bench_1m uses Redis database 1, on orders_bench_10k database 2, each
flushed before use (the app caches per user id, signed with the run's
SECRET_KEY). Nothing else is touched. Temporary files (wrk data with bench tokens, gunicorn logs)
go to a temporary folder, removed at the end unless --keep or a failure.

    make bench                                       # ~9 min; +5 min the first time
    make bench BENCH_ARGS="--no-baseline --rounds 1" # ~4 min: the project alone
    make bench BENCH_ARGS="--quick"                  # 10k orders only, short runs
    make bench BENCH_ARGS="--only create --workers 2 --threads 1"

Not a test: the numbers move with whatever else the machine is doing.
"""

import argparse
import contextlib
import functools
import json
import os
import platform
import re
import resource
import secrets
import shlex
import shutil
import signal
import socket
import statistics
import string
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
PYTHON = ROOT / ".venv" / "bin" / "python"
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
PG = ["-h", "127.0.0.1", "-U", "postgres"]
PG_URL = "postgres://postgres@127.0.0.1:5432/{}"
REDIS_URL = "redis://127.0.0.1:6379/0"
PG_START = "pg_ctlcluster --skip-systemctl-redirect {version} main start"
REDIS_START = "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no"

DB_1M, DB_10K = "orders_bench_1m", "orders_bench_10k"
DB_PROC, DB_PGBENCH = "orders_bench_proc", "orders_bench_pgbench"
SEEDS = {DB_1M: 1_000_000, DB_10K: 10_000}
# A Redis database of its own for each benchmark database, flushed before
# each run (prepare()): the app caches users by id there (accounts.auth_cache),
# user 42 of orders_bench_1m is not user 42 of orders_bench_10k, and what it
# caches is signed with SECRET_KEY, which is new each run. (Throttle budgets
# are per user id too.)
REDIS_DBS = {DB_1M: 1, DB_10K: 2}
SEED_CUSTOMERS = 2000  # seed_demo --customers: its 2 demo customers and these

# The baseline (bench/baseline): a typical DRF build of the same API, on a
# database of its own beside each of the project's, seeded alike.
BASELINE = BENCH / "baseline"
BASELINE_DBS = {DB_1M: "orders_bench_baseline", DB_10K: "orders_bench_baseline_10k"}
BASELINE_SCENARIOS = ("create", "detail", "list")

SCENARIOS = (
    "create",
    "create_many",
    "detail",
    "list",
    "queries",
    "processing",
    "pgbench",
    "webhooks",
    "backup",
)

# Targets (the brief of this benchmark).
CREATE_RPS, DETAIL_RPS, LIST_RPS = 450, 700, 200
MAX_QUERIES, MAX_TAIL = 14, 4.0  # statements per request; p99 / p50 under create load
# Create with a subscription on "*" (and a worker sending) within this of without.
WEBHOOK_OVERHEAD = 0.10
# An export or restore holds one chunk whatever the number of orders: at a
# million orders its peak memory stays within this (the process alone is ~100 MB).
FLAT_RSS_MB = 300
DB_HOOKS = "orders_bench_hooks"
DB_RESTORE = "orders_bench_restore"
SENDER_EVENTS = 5000
LIST_GROWTH = 1.5  # list at 1M vs 10k
# Against the baseline: req/s of the project / req/s of the baseline.
VS_BASELINE = {"create": 3.0, "detail": 1.5, "list": 4.0}
PGBENCH_SHARE = 0.20  # create's req/s against pgbench's create transactions/s
PROCESS_RATE = 2000  # orders/s
MEMORY_GROWTH = 1.25  # RSS at the end vs after the first batch

STARTED = time.monotonic()


def log(message: str) -> None:
    elapsed = int(time.monotonic() - STARTED)
    print(f"[{elapsed // 60:02d}:{elapsed % 60:02d}] {message}", flush=True)


class BenchError(Exception):
    pass


# --- processes ----------------------------------------------------------------------


def redis_url(db: str) -> str:
    return REDIS_URL.removesuffix("/0") + f"/{REDIS_DBS.get(db, 0)}"


def base_env(**extra: str) -> dict[str, str]:
    """A clean environment: the app reads its whole configuration from the
    environment, so nothing from the caller's shell (a DATABASE_URL, a
    throttle rate) may leak into what is measured. GUNICORN_* pass through."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER", "TERM")
    env = {k: v for k, v in os.environ.items() if k in keep or k.startswith("GUNICORN_")}
    env.update(extra)
    return env


def run(cmd: list, *, env=None, quiet: bool = False, check: bool = True, **kwargs):
    """Run a command to the end; its output goes to the terminal unless `quiet`
    (then it is kept, and shown only if the command fails)."""
    if quiet:
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
    # Every command here is this harness's own (psql, wrk, pgbench, the venv).
    result = subprocess.run(  # noqa: S603
        [str(c) for c in cmd], env=env, cwd=ROOT, check=False, **kwargs
    )
    if check and result.returncode != 0:
        output = ((result.stdout or "") + (result.stderr or ""))[-3000:] if quiet else ""
        raise BenchError(f"{' '.join(map(str, cmd))} failed ({result.returncode})\n{output}")
    return result


def django_job(job: str, db: str, *args: str, **env: str) -> dict:
    """Run a bench/django_jobs.py job and return what it printed as BENCH_JSON.
    Its progress (stderr) goes to the terminal."""
    env = base_env(DATABASE_URL=PG_URL.format(db), **env)
    return job_result(BENCH / "django_jobs.py", job, args, env)


def job_result(script: Path, job: str, args, env: dict) -> dict:
    """Run `script job *args` and return what it printed as BENCH_JSON."""
    result = run([PYTHON, script, job, *args], env=env, stdout=subprocess.PIPE, text=True)
    for line in reversed(result.stdout.splitlines()):
        if line.startswith("BENCH_JSON "):
            return json.loads(line.removeprefix("BENCH_JSON "))
    raise BenchError(f"{script.name} {job} printed no result:\n{result.stdout[-2000:]}")


def psql(db: str, sql: str, /, *, port: int | None = None, **variables: str) -> str:
    """Run `sql` in `db` (on another server than the primary with `port`);
    `variables` are psql variables, quoted in the SQL as :'name' (so they are
    never pasted into it). Fed on stdin: psql -c would not substitute them."""
    settings = [f"--set={name}={value}" for name, value in variables.items()]
    server = [*PG, "-p", str(port)] if port else PG
    cmd = ["psql", *server, "-d", db, "-v", "ON_ERROR_STOP=1", "-X", "-At", *settings]
    return run(cmd, quiet=True, input=sql).stdout


def manage(db: str, *args: str, quiet: bool = False) -> None:
    run(
        [PYTHON, "manage.py", *args],
        env=base_env(DEBUG="1", DATABASE_URL=PG_URL.format(db)),
        quiet=quiet,
    )


# --- services and databases ---------------------------------------------------------


def ensure_services() -> None:
    if run(["pg_isready", *PG[:2], "-q"], check=False).returncode != 0:
        log("PostgreSQL does not answer: starting it")
        version = sorted(os.listdir("/etc/postgresql"))[-1]
        run(shlex.split(PG_START.format(version=version)))
    if run(["redis-cli", "-h", "127.0.0.1", "ping"], check=False, quiet=True).returncode != 0:
        log("Redis does not answer: starting it")
        run(shlex.split(REDIS_START))
    for _ in range(50):
        pg = run(["pg_isready", *PG[:2], "-q"], check=False).returncode == 0
        redis = run(["redis-cli", "-h", "127.0.0.1", "ping"], check=False, quiet=True)
        if pg and redis.stdout.strip() == "PONG":
            break
        time.sleep(0.2)
    else:
        raise BenchError("PostgreSQL or Redis still does not answer")
    if not shutil.which("wrk"):
        log("wrk is missing: installing it")
        run(["apt-get", "install", "-y", "wrk"])
    if not shutil.which("pgbench"):
        raise BenchError("pgbench is missing (Debian: postgresql-contrib / postgresql-15)")
    if (ROOT / ".env").exists():
        log("warning: .env exists in the project; its values apply where the bench sets none")


def db_exists(db: str) -> bool:
    found = psql("postgres", "SELECT 1 FROM pg_database WHERE datname = :'db'", db=db)
    return found.strip() == "1"


def recreate_db(db: str) -> None:
    run(["dropdb", *PG, "--if-exists", "--force", db], quiet=True)
    run(["createdb", *PG, db], quiet=True)


def ensure_seeded(db: str) -> int:
    """Create, migrate and seed `db` up to its order count (a no-op after the
    first time, thanks to --top-up), then VACUUM ANALYZE it."""
    orders = SEEDS[db]
    if not db_exists(db):
        log(f"{db}: creating")
        run(["createdb", *PG, db], quiet=True)
    manage(db, "migrate", "--noinput", quiet=True)
    started = time.monotonic()
    log(
        f"{db}: seeding up to {orders:,} orders (--top-up; about 3.5 min per million "
        "the first time)"
    )
    manage(
        db,
        *("seed_demo", "--orders", str(orders), "--top-up", "--seed", "1"),
        *("--customers", str(SEED_CUSTOMERS)),
    )
    psql(db, "VACUUM ANALYZE")
    log(f"{db}: ready ({time.monotonic() - started:.0f} s with VACUUM ANALYZE)")
    return int(psql(db, "SELECT count(*) FROM orders_order"))


def baseline_env(db: str, secret: str, **extra: str) -> dict[str, str]:
    return base_env(
        DATABASE_URL=PG_URL.format(db), SECRET_KEY=secret, JWT_ACCESS_MINUTES="240", **extra
    )


def baseline_job(job: str, db: str, secret: str, *args: str, **env: str) -> dict:
    """Run a bench/baseline/jobs.py job; what it printed as BENCH_JSON."""
    return job_result(BASELINE / "jobs.py", job, args, baseline_env(db, secret, **env))


def ensure_baseline_seeded(db: str, orders: int, secret: str) -> int:
    """The baseline's database: created and migrated if need be, topped up
    to `orders` orders (bench/baseline/seed.sql: only the first run has work),
    then VACUUM ANALYZE as the project's."""
    if not db_exists(db):
        log(f"{db}: creating")
        run(["createdb", *PG, db], quiet=True)
    run(
        [PYTHON, BASELINE / "manage.py", "migrate", "--noinput"],
        env=baseline_env(db, secret),
        quiet=True,
    )
    started = time.monotonic()
    have = int(psql(db, "SELECT count(*) FROM shop_order"))
    if have < orders:
        log(f"{db}: seeding {orders - have:,} orders (SQL; about 1 min per million)")
    psql(
        db,
        (BASELINE / "seed.sql").read_text(),
        orders=str(orders),
        customers=str(SEED_CUSTOMERS + 2),  # seed_demo's 2 demo customers
    )
    psql(db, "VACUUM ANALYZE")
    log(f"{db}: ready ({time.monotonic() - started:.0f} s with VACUUM ANALYZE)")
    return int(psql(db, "SELECT count(*) FROM shop_order"))


def baseline_prepare(db: str, secret: str, tmp: Path) -> Path:
    data = tmp / f"data-{db}.lua"
    info = baseline_job("prepare", db, secret, "--out", str(data))
    log(
        f"{db}: {info['orders']:,} orders, {info['products']} products; "
        f"{info['customers']} bench customers, {info['order_ids']} order ids for detail, "
        f"data in {data}"
    )
    return data


# --- gunicorn -----------------------------------------------------------------------


# The project's access line (Django, core.access) in ms; the baseline's
# (gunicorn's access log, the format below) in microseconds.
ACCESS_LINE = re.compile(r"(?:core|baseline)\.access: \S+ \S+ (\d{3}) ([\d.]+)(ms|us)")
BASELINE_ACCESS_FORMAT = "baseline.access: %(m)s %(U)s %(s)s %(D)sus"


@dataclass
class Server:
    url: str
    db: str
    log: Path
    workers: int
    threads: int
    process: subprocess.Popen
    log_offset: int = 0

    def read_log(self) -> tuple[list[str], list[float]]:
        """What was logged since the last call: the ERROR/CRITICAL lines (and
        tracebacks), and the time the app took per request (access lines)."""
        with self.log.open("rb") as f:
            f.seek(self.log_offset)
            text = f.read().decode(errors="replace")
            self.log_offset = f.tell()
        problems, app_ms = [], []
        for line in text.splitlines():
            if match := ACCESS_LINE.search(line):
                app_ms.append(float(match[2]) / (1000 if match[3] == "us" else 1))
            elif any(f in line for f in (" ERROR ", " CRITICAL ", "[ERROR]", "[CRITICAL]")):
                problems.append(line)  # Django's logging, and gunicorn's own
            elif line.startswith("Traceback"):
                problems.append(line)
        return problems, app_ms


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@contextlib.contextmanager
def gunicorn(db: str, args, secret: str, tmp: Path, label: str):
    """gunicorn with production settings on `db`, stopped however the block ends."""
    if not port_free(args.port):
        raise BenchError(f"127.0.0.1:{args.port} is in use: stop what listens there or --port")
    env = base_env(
        DEBUG="0",
        SECRET_KEY=secret,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        # Plain HTTP on loopback: no redirect to https.
        SECURE_SSL_REDIRECT="0",
        DATABASE_URL=PG_URL.format(db),
        REDIS_URL=redis_url(db),
        GUNICORN_BIND=f"127.0.0.1:{args.port}",
        JWT_ACCESS_MINUTES="240",
        # 64 customers place thousands of orders each: the per-customer cap
        # of open orders is for shops, not for a load test.
        MAX_OPEN_ORDERS_PER_CUSTOMER="100000000",
    )
    if args.workers:
        env["GUNICORN_WORKERS"] = str(args.workers)
    if args.threads:
        env["GUNICORN_THREADS"] = str(args.threads)
    # What gunicorn will use: gunicorn.conf.py read with the same environment.
    conf = run(
        [
            PYTHON,
            "-c",
            "import runpy; c = runpy.run_path('gunicorn.conf.py'); "
            "print(c['workers'], c['threads'])",
        ],
        env=env,
        quiet=True,
    ).stdout.split()
    workers, threads = int(conf[0]), int(conf[1])
    cmd = [GUNICORN, "orders_project.wsgi:application", "--config", "gunicorn.conf.py"]
    if args.server == "granian":  # the same WSGI application under granian (measured, see docs)
        cmd = [
            *(ROOT / ".venv" / "bin" / "granian", "--interface", "wsgi", "--no-ws"),
            *("--host", "127.0.0.1", "--port", str(args.port), "--workers", str(workers)),
            *("--blocking-threads", str(threads), "orders_project.wsgi:application"),
        ]
    with serve(cmd, ROOT, env, args.port, db, tmp / f"gunicorn-{label}.log", workers, threads) as s:
        yield s


@contextlib.contextmanager
def baseline_gunicorn(db: str, args, secret: str, tmp: Path, workers: int, threads: int):
    """The baseline under the same gunicorn, with the project's workers and
    threads (and its default timeout), on the next port but one."""
    port = args.port + 2  # args.port + 1 is the webhook receiver's
    if not port_free(port):
        raise BenchError(f"127.0.0.1:{port} is in use: the baseline needs it (or --port)")
    env = baseline_env(db, secret, DEBUG="0", ALLOWED_HOSTS="127.0.0.1,localhost")
    cmd = [
        *(GUNICORN, "baseline_project.wsgi:application"),
        *("--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads)),
        # One access line per request, as the project writes (there from Django).
        *("--access-logfile", "-", "--access-logformat", BASELINE_ACCESS_FORMAT),
        # gunicorn's control socket defaults to one path per user: not the project's.
        *("--control-socket", str(tmp / "baseline-gunicorn.ctl")),
    ]
    with serve(cmd, BASELINE, env, port, db, tmp / f"gunicorn-{db}.log", workers, threads) as s:
        yield s


@contextlib.contextmanager
def serve(cmd: list, cwd: Path, env: dict, port: int, db: str, log_path: Path, workers, threads):
    """Start `cmd` (a gunicorn on `port`), wait until it answers /healthz;
    stopped however the block ends."""
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(  # noqa: S603
            cmd,
            cwd=cwd,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            # Its own process group: a Ctrl-C reaches only this script, which
            # then stops gunicorn in order (the finally below).
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", db, log_path, workers, threads, process)
    try:
        log(f"gunicorn on {db}: {workers} workers x {threads} threads, log {log_path}")
        wait_healthy(server)
        yield server
    finally:
        stop(process)


def wait_healthy(server: Server, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            tail = server.log.read_text(errors="replace")[-3000:]
            raise BenchError(f"gunicorn exited ({server.process.returncode}):\n{tail}")
        try:
            with urllib.request.urlopen(f"{server.url}/healthz", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    raise BenchError(f"gunicorn did not answer /healthz within {timeout:.0f} s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.terminate()  # the master stops its workers gracefully
    try:
        process.wait(timeout=40)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the group started above, nothing else
        process.wait()


# --- wrk ----------------------------------------------------------------------------


def wrk(server: Server, script: str, args, data: Path, seconds: int, *extra: str) -> dict:
    """One wrk run; returns what the script's done() printed."""
    cmd = [
        "wrk",
        f"-t{args.wrk_threads}",
        f"-c{args.connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        BENCH / "lua" / script,
        server.url,
        # A nonce per run keeps every Idempotency-Key unique across runs.
        "--",
        secrets.token_hex(4),
        *extra,
    ]
    env = base_env(BENCH_DATA=str(data), BENCH_LUA_DIR=str(BENCH / "lua"))
    result = run(cmd, env=env, quiet=True, timeout=seconds + 120)
    for line in result.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            return json.loads(line.removeprefix("BENCH_RESULT "))
    raise BenchError(f"wrk printed no result:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")


# --- CPU accounting -----------------------------------------------------------------
# The machine may be shared (tests running beside the benchmark): CPU time per
# request of gunicorn and of its PostgreSQL backends does not depend on that
# as much as req/s does, and the machine's busy time left over shows how much
# else was running. A backend's parallel workers live for one query: their CPU
# is found in the postmaster's reaped children's time, which counts with PG.


def proc_stat(pid: int) -> list[str] | None:
    try:
        # Fields after "(comm)": state, ppid, pgrp, ... utime at 11, stime at 12.
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def cpu_of(pids) -> dict[int, float]:
    ticks = os.sysconf("SC_CLK_TCK")
    times = {}
    for pid in pids:
        fields = proc_stat(pid)
        if fields:
            times[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return times


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = proc_stat(int(entry.name))
            if fields and int(fields[2]) == pgid:
                pids.append(int(entry.name))
    return pids


def backend_pids(db: str, *, port: int | None = None) -> list[int]:
    sql = (
        "SELECT pid FROM pg_stat_activity WHERE backend_type = 'client backend' AND datname = :'db'"
    )
    return [int(pid) for pid in psql("postgres", sql, port=port, db=db).split()]


@functools.cache
def postmaster_pid() -> int | None:
    """PostgreSQL's postmaster: the parent of every backend (this one's too)."""
    fields = proc_stat(int(psql("postgres", "SELECT pg_backend_pid()")))
    return int(fields[1]) if fields else None


def exited_children_cpu(pid: int | None) -> float:
    """CPU seconds of the children `pid` has reaped: for the postmaster, its
    backends and workers that ended (parallel query workers, autovacuum)."""
    fields = proc_stat(pid) if pid else None
    if not fields:
        return 0.0
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")  # cutime + cstime


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / ticks, sum(values) / ticks


@dataclass
class CpuMeter:
    """CPU seconds used by gunicorn, its database backends, wrk and the whole
    machine between start() and stop()."""

    server: Server
    before: dict = field(default_factory=dict)

    def _snapshot(self) -> dict:
        # Read before the psql run below, which is a child too (and whose
        # backend the postmaster reaps).
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {
            "wrk": children.ru_utime + children.ru_stime,  # the children waited for: wrk
            "machine": machine_busy(),
            "app": cpu_of(group_pids(self.server.process.pid)),
            "pg_ended": exited_children_cpu(postmaster_pid()),
            "pg": cpu_of(backend_pids(self.server.db)),
        }

    def start(self) -> None:
        self.before = self._snapshot()

    def stop(self, requests: int) -> dict:
        after, before = self._snapshot(), self.before

        def spent(kind):
            return sum(t - before[kind].get(pid, 0.0) for pid, t in after[kind].items())

        app, wrk_cpu = spent("app"), after["wrk"] - before["wrk"]
        # PostgreSQL processes that ended within the run count too: mostly the
        # parallel workers of a query (a COUNT(*) of a million rows does 2/3 of
        # its work in them), else autovacuum, or another client's connections.
        ended = after["pg_ended"] - before["pg_ended"]
        pg = spent("pg") + ended
        busy = after["machine"][0] - before["machine"][0]
        wall = (after["machine"][1] - before["machine"][1]) / (os.cpu_count() or 1)
        per = 1000 / max(requests, 1)
        return {
            "app_ms": app * per,
            "pg_ms": pg * per,
            "pg_ended_ms": ended * per,
            "wrk_ms": wrk_cpu * per,
            "busy": busy / max(wall, 1e-9) / (os.cpu_count() or 1),
            # Busy time of everything else: other work on the machine,
            # PostgreSQL's background processes, the kernel's share.
            "other": max(0.0, busy - app - pg - wrk_cpu) / max(wall, 1e-9) / (os.cpu_count() or 1),
        }


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def load(
    server: Server, name: str, script: str, args, data: Path, *extra: str, warm_up: bool = True
) -> dict:
    """Warm up (unless not `warm_up`), then measure; print one progress line per phase."""
    if args.warmup and warm_up:
        warm = wrk(server, script, args, data, args.warmup, *extra)
        problems, _ = server.read_log()
        log(
            f"  {name}: warm-up {warm['rps']:.0f} req/s, {warm['unexpected']} unexpected, "
            f"{len(problems)} error log lines"
        )
    meter = CpuMeter(server)
    meter.start()
    result = wrk(server, script, args, data, args.duration, *extra)
    result["cpu"] = meter.stop(result["requests"])
    result["log_problems"], app_ms = server.read_log()
    result["app_p50_ms"], result["app_p99_ms"] = percentile(app_ms, 50), percentile(app_ms, 99)
    errors = sum(result["socket_errors"].values())
    cpu = result["cpu"]
    log(
        f"  {name}: {result['rps']:.0f} req/s, p50 {result['p50_us'] / 1000:.1f} ms, "
        f"p99 {result['p99_us'] / 1000:.1f} ms, statuses {result['statuses']}, "
        f"socket errors {errors}, error log lines {len(result['log_problems'])}"
    )
    log(
        f"  {name}: in the app p50 {result['app_p50_ms']:.1f} ms, p99 "
        f"{result['app_p99_ms']:.1f} ms; CPU per request: gunicorn {cpu['app_ms']:.1f} ms, "
        f"PostgreSQL {cpu['pg_ms']:.1f} ms, wrk {cpu['wrk_ms']:.1f} ms; machine busy "
        f"{cpu['busy']:.0%}, of which other work {cpu['other']:.0%}"
    )
    if result["sample"]:
        log(f"  {name}: first unexpected response: {result['sample'][:300]}")
    for line in result["log_problems"][:5]:
        log(f"  {name}: log: {line[:300]}")
    return result


def merge_rounds(runs: list[dict]) -> dict:
    """One result of the shape load() returns from several rounds of one
    load: the median of each figure, the sum of the counts."""
    if len(runs) == 1:
        return {**runs[0], "rounds": [runs[0]["rps"]]}
    median = statistics.median

    def summed(key):
        total: dict = {}
        for r in runs:
            for k, n in r[key].items():
                total[k] = total.get(k, 0) + n
        return total

    return {
        "requests": sum(r["requests"] for r in runs),
        "seconds": sum(r["seconds"] for r in runs),
        **{k: median(r[k] for r in runs) for k in ("rps", "p50_us", "p90_us", "p99_us")},
        "max_us": max(r["max_us"] for r in runs),
        "statuses": summed("statuses"),
        "unexpected": sum(r["unexpected"] for r in runs),
        "sample": next((r["sample"] for r in runs if r["sample"]), None),
        "socket_errors": summed("socket_errors"),
        "log_problems": [line for r in runs for line in r["log_problems"]],
        "app_p50_ms": median(r["app_p50_ms"] for r in runs),
        "app_p99_ms": median(r["app_p99_ms"] for r in runs),
        "cpu": {k: median(r["cpu"][k] for r in runs) for k in runs[0]["cpu"]},
        "rounds": [r["rps"] for r in runs],
    }


def side_by_side(
    project: Server,
    baseline: Server | None,
    name: str,
    script: str,
    args,
    data: Path,
    bdata: Path | None,
    *extra: str,
) -> tuple[dict, dict | None]:
    """`script` against the project and the baseline in turn, --rounds times
    (project, baseline, project, ...), one loaded at a time; each warms up
    before its first round only. The medians of the rounds."""
    mine, theirs = [], []
    for n in range(args.rounds):
        label = f" (round {n + 1}/{args.rounds})" if args.rounds > 1 else ""
        mine.append(load(project, name + label, script, args, data, *extra, warm_up=n == 0))
        if baseline is not None:
            theirs.append(
                load(
                    baseline,
                    f"{name}, baseline{label}",
                    script,
                    args,
                    bdata,
                    *extra,
                    warm_up=n == 0,
                )
            )
    return merge_rounds(mine), merge_rounds(theirs) if theirs else None


@contextlib.contextmanager
def webhook_receiver(port: int):
    """A fast local receiver (bench/receiver.py): its URL."""
    if not port_free(port):
        raise BenchError(f"127.0.0.1:{port} is in use: the webhook receiver needs it")
    process = subprocess.Popen(  # noqa: S603
        [PYTHON, BENCH / "receiver.py", str(port)], start_new_session=True
    )
    try:
        for _ in range(50):
            if not port_free(port):
                break
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/hooks"
    finally:
        stop(process)


@contextlib.contextmanager
def webhooks_worker(db: str, secret: str, tmp: Path):
    """One Celery worker process on the `webhooks` queue, as production runs it."""
    env = base_env(
        DEBUG="0",
        SECRET_KEY=secret,
        DATABASE_URL=PG_URL.format(db),
        REDIS_URL=redis_url(db),  # the web's broker
        WEBHOOK_ALLOW_PRIVATE_TARGETS="1",  # the receiver is on 127.0.0.1
    )
    log_path = tmp / "webhooks-worker.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(  # noqa: S603
            [
                *(ROOT / ".venv" / "bin" / "celery", "-A", "orders_project", "worker"),
                *("-Q", "webhooks", "--concurrency", "1", "--loglevel", "WARNING"),
            ],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        stop(process)


def webhooks_on(server: Server, args, data: Path, db: str, secret: str, tmp: Path) -> dict:
    """The create load again with a subscription on "*" and a worker sending."""
    with webhook_receiver(args.port + 1) as url, webhooks_worker(db, secret, tmp):
        job_env = {"DEBUG": "1", "SECRET_KEY": secret, "WEBHOOK_ALLOW_PRIVATE_TARGETS": "1"}
        django_job("subscribe", db, "--url", url, **job_env)
        try:
            time.sleep(6)  # the web workers see the subscription (they ask every 5 s)
            result = load(server, "create, webhooks on *", "create.lua", args, data, "demo")
            time.sleep(5)  # let the worker catch up
            result["deliveries"] = django_job("webhooks_pending", db, **job_env)
            log(f"  webhooks: {result['deliveries']}")
        finally:
            django_job("subscribe", db, "--url", url, "--remove", **job_env)
    return result


def sender(args, secret: str) -> dict:
    log(f"{DB_HOOKS}: recreating; {SENDER_EVENTS:,} events for one subscription")
    recreate_db(DB_HOOKS)
    manage(DB_HOOKS, "migrate", "--noinput", quiet=True)
    with webhook_receiver(args.port + 1) as url:
        result = django_job(
            "sender",
            DB_HOOKS,
            "--url",
            url,
            "--events",
            str(SENDER_EVENTS),
            DEBUG="0",
            SECRET_KEY=secret,
            WEBHOOK_ALLOW_PRIVATE_TARGETS="1",
        )
    log(
        f"  sender: {result['succeeded']:,} deliveries in {result['seconds']:.1f} s = "
        f"{result['per_s']:.0f} deliveries/s, one process"
    )
    return result


def backup(args, secret: str, db: str, tmp: Path) -> dict:
    """Export every order of `db` to a folder, then restore the export into
    an empty database: orders per second and peak memory of each."""
    folder = tmp / "backups"
    storage = {"BACKUP_STORAGE_URL": f"file://{folder}", "SECRET_KEY": secret, "DEBUG": "0"}
    log(f"{db}: exporting every order to {folder}")
    exported = django_job("export", db, **storage)
    log(
        f"  export: {exported['count']:,} orders in {exported['seconds']:.0f} s = "
        f"{exported['orders_per_s']:.0f} orders/s, {exported['bytes'] / 2**20:.0f} MB, "
        f"peak RSS {exported['rss_peak_mb']:.0f} MB"
    )
    recreate_db(DB_RESTORE)
    manage(DB_RESTORE, "migrate", "--noinput", quiet=True)
    log(f"{DB_RESTORE}: restoring it")
    restored = django_job("restore", DB_RESTORE, str(folder / exported["name"]), **storage)
    log(
        f"  restore: {restored['orders']:,} orders in {restored['seconds']:.0f} s = "
        f"{restored['orders_per_s']:.0f} orders/s, peak RSS {restored['rss_peak_mb']:.0f} MB"
    )
    return {"export": exported, "restore": restored}


def show_queries(counts: dict, path: Path) -> None:
    path.write_text(json.dumps(counts, indent=2))
    log(
        "  "
        + ", ".join(f"{k}: {v['queries']} queries ({v['status']})" for k, v in counts.items())
        + f"; the SQL is in {path}"
    )


def page1_lines(db: str, app: str = "orders") -> int:
    """Lines in the list's page 1 (the 20 newest orders): the list's cost
    grows with them, so the 1M / 10k and project / baseline comparisons show
    them. `app`: the tables' prefix, "shop" for the baseline's."""
    lines = int(
        psql(
            db,
            f"SELECT count(*) FROM {app}_orderline WHERE order_id IN (SELECT id FROM "  # noqa: S608
            f"{app}_order ORDER BY created_at DESC, id DESC LIMIT 20)",
        )
    )
    log(f"{db}: page 1 of the list holds {lines} order lines")
    return lines


def prepare(db: str, secret: str, tmp: Path) -> tuple[Path, dict]:
    if db in REDIS_DBS:  # the bench's own (never database 0)
        run(["redis-cli", "-h", "127.0.0.1", "-n", str(REDIS_DBS[db]), "FLUSHDB"], quiet=True)
    data = tmp / f"data-{db}.lua"
    info = django_job(
        "prepare", db, "--out", str(data), DEBUG="1", SECRET_KEY=secret, JWT_ACCESS_MINUTES="240"
    )
    log(
        f"{db}: {info['orders']:,} orders; {info['customers']} bench customers, "
        f"{info['order_ids']} order ids for detail, data in {data}"
    )
    return data, info


# --- processing and pgbench ---------------------------------------------------------


def processing(args, secret: str) -> dict:
    log(f"{DB_PROC}: recreating, seeding {args.processing_orders:,} pending orders")
    recreate_db(DB_PROC)
    manage(DB_PROC, "migrate", "--noinput", quiet=True)
    manage(
        DB_PROC,
        "seed_demo",
        "--orders",
        str(args.processing_orders),
        "--status",
        "pending",
        "--seed",
        "1",
        quiet=True,
    )
    psql(DB_PROC, "VACUUM ANALYZE")
    log(f"{DB_PROC}: processing (fresh process, DEBUG off)")
    # EMAIL_URL: should anything send mail, it stays in memory.
    result = django_job("process", DB_PROC, DEBUG="0", SECRET_KEY=secret, EMAIL_URL="memorymail://")
    log(
        f"  processing: {result['processed']:,} orders in {result['seconds']:.1f} s = "
        f"{result['orders_per_s']:.0f} orders/s ({result['failed']} failed, "
        f"{result['pending_after']} left); RSS after first batch "
        f"{result['rss_first_batch_mb']:.0f} MB, at the end {result['rss_end_mb']:.0f} MB, "
        f"peak {result['rss_peak_mb']:.0f} MB"
    )
    return result


def pgbench(args, secret: str) -> dict:
    log(f"{DB_PGBENCH}: recreating (migrate, demo products, restock)")
    recreate_db(DB_PGBENCH)
    manage(DB_PGBENCH, "migrate", "--noinput", quiet=True)
    manage(DB_PGBENCH, "seed_demo", quiet=True)
    info = django_job("restock", DB_PGBENCH, DEBUG="1", SECRET_KEY=secret)
    products = info["demo_products"]
    log(f"  pgbench: 8 clients, 2 threads, {args.duration} s, {len(products)} products")
    variables = {
        "products": ",".join(map(str, products)),
        "nproducts": len(products),
        "customer": info["customer_id"],
    }
    # -n: no pgbench tables to vacuum. Clients and threads as the brief says.
    cmd = ["pgbench", *PG, "-n", "-c8", "-j2", "-T", str(args.duration)]
    cmd += ["-f", BENCH / "pgbench_create.sql", *(f"-D{k}={v}" for k, v in variables.items())]
    result = run([*cmd, DB_PGBENCH], quiet=True)
    figures = {}
    for line in result.stdout.splitlines():
        if line.startswith("tps = ") and "without initial connection" in line:
            figures["tps"] = float(line.split()[2])
        elif line.startswith("latency average = "):
            figures["latency_ms"] = float(line.split()[3])
        elif line.startswith("number of failed transactions: "):
            figures["failed"] = int(line.split()[4])
        elif line.startswith("number of transactions actually processed: "):
            figures["transactions"] = int(line.split()[5].split("/")[0])
    if "tps" not in figures:
        raise BenchError(f"pgbench printed no tps:\n{result.stdout}\n{result.stderr}")
    orders = int(psql(DB_PGBENCH, "SELECT count(*) FROM orders_order"))
    log(
        f"  pgbench: {figures['tps']:.0f} tps, {figures.get('latency_ms', 0):.1f} ms average, "
        f"{figures.get('failed', 0)} failed, {orders:,} orders written"
    )
    return figures


# --- the table ----------------------------------------------------------------------


@dataclass
class Row:
    scenario: str
    rps: str = "-"
    p50: str = "-"
    p99: str = "-"
    tail: str = "-"
    queries: str = "-"
    cpu: str = "-"
    bad: str = "-"
    target: str = ""
    met: str = "-"


def yes(ok: bool) -> str:
    return "yes" if ok else "NO"


def tail_ok(r: dict) -> bool:
    return r["p99_us"] <= MAX_TAIL * max(r["p50_us"], 1)


def cpu_ms(r: dict) -> float:
    return r["cpu"]["app_ms"] + r["cpu"]["pg_ms"]


def web_row(name: str, r: dict, queries: int | None, target: str, ok: bool) -> Row:
    p50, p99 = r["p50_us"] / 1000, r["p99_us"] / 1000
    bad = r["unexpected"] + sum(r["socket_errors"].values())
    clean = bad == 0 and not r["log_problems"]
    return Row(
        name,
        rps=f"{r['rps']:.0f}",
        p50=f"{p50:.1f}",
        p99=f"{p99:.1f}",
        tail=f"{p99 / p50:.1f}" if p50 else "-",
        queries="-" if queries is None else str(queries),
        cpu=f"{r['cpu']['app_ms']:.1f} + {r['cpu']['pg_ms']:.1f}" if "cpu" in r else "-",
        bad=", ".join(
            [f"{n} x {s}" for s, n in sorted(r["statuses"].items()) if not s.startswith("2")]
            + [f"{n} {kind}" for kind, n in r["socket_errors"].items() if n]
            + ([f"{len(r['log_problems'])} error log lines"] if r["log_problems"] else [])
        )
        or "0",
        target=target,
        met=yes(ok and clean),
    )


def baseline_row(name: str, r: dict, queries: int | None) -> Row:
    """The baseline's own figures: a reference, with no target of its own
    (NO only if it answered anything but the expected status)."""
    row = web_row(name, r, queries, "typical DRF build, for reference", True)
    row.met = "-" if row.met == "yes" else "NO"
    return row


def ratio_row(name: str, mine: dict, theirs: dict, queries: str, need: float, **extra) -> Row:
    """Project / baseline: req/s, latencies and CPU per request (app + PG)."""
    rps = mine["rps"] / max(theirs["rps"], 1e-9)
    target = f">= {need:g}x baseline req/s" + extra.get("target", "")
    return Row(
        f"{name}: project / baseline",
        rps=f"{rps:.2f}x",
        p50=f"{mine['p50_us'] / max(theirs['p50_us'], 1):.2f}x",
        p99=f"{mine['p99_us'] / max(theirs['p99_us'], 1):.2f}x",
        queries=queries,
        cpu=f"{cpu_ms(mine) / max(cpu_ms(theirs), 1e-9):.2f}x",
        target=target,
        met=yes(rps >= need and extra.get("ok", True)),
    )


def build_rows(res: dict) -> list[Row]:
    rows = []
    # Counts of requests that were answered as expected only: a 429 or a 400
    # costs fewer statements and would pass the budget for nothing.
    q = {name: v["queries"] for name, v in res.get("queries", {}).items() if v["status"] < 300}
    bq = {
        name: v["queries"]
        for name, v in res.get("baseline_queries", {}).items()
        if v["status"] < 300
    }
    base = res.get("baseline", {})
    big = res.get("main_db", DB_1M)
    tail = f"p99 <= {MAX_TAIL:.0f}x p50"

    def pair(mine: str, theirs: str) -> str:
        return f"{q.get(mine, '-')} / {bq.get(theirs, '-')}"

    if "create" in res:
        r = res["create"]
        ok = tail_ok(r) and q.get("create", 99) <= MAX_QUERIES
        target = f"{tail}, <= {MAX_QUERIES} queries"
        if "create" not in base:  # no baseline: the absolute target
            ok, target = ok and r["rps"] >= CREATE_RPS, f">= {CREATE_RPS} req/s, {target}"
        rows.append(web_row("create, 3 lines", r, q.get("create"), target, ok))
        if "create" in base:
            rows.append(
                baseline_row("create, 3 lines (baseline)", base["create"], bq.get("create"))
            )
            if "pgbench" in res:
                share = r["rps"] / res["pgbench"]["tps"]
                extra = {
                    "target": f", >= {PGBENCH_SHARE:.0%} of pgbench ({share:.0%})",
                    "ok": share >= PGBENCH_SHARE,
                }
            else:
                extra = {"target": f"; >= {PGBENCH_SHARE:.0%} of pgbench: not run"}
            rows.append(
                ratio_row(
                    "create",
                    r,
                    base["create"],
                    pair("create", "create"),
                    VS_BASELINE["create"],
                    **extra,
                )
            )
    elif "create" in q:
        rows.append(
            Row(
                "create, 3 lines",
                queries=str(q.get("create", "-")),
                target=f"<= {MAX_QUERIES} queries",
                met=yes(q.get("create", 99) <= MAX_QUERIES),
            )
        )
    if "create_webhooks" in res and "create" in res:
        on, off = res["create_webhooks"]["rps"], res["create"]["rps"]
        rows.append(
            web_row(
                "create, webhooks on *",
                res["create_webhooks"],
                None,
                f">= {1 - WEBHOOK_OVERHEAD:.0%} of create without ({on / max(off, 1e-9):.0%})",
                on >= (1 - WEBHOOK_OVERHEAD) * off,
            )
        )
    if "backup" in res:
        for step in ("export", "restore"):
            r = res["backup"][step]
            count = r.get("count", r.get("orders", 0))
            rows.append(
                Row(
                    f"backup {step}, {count:,} orders",
                    rps=f"{r['orders_per_s']:.0f}",
                    target=f"orders/s; peak RSS {r['rss_peak_mb']:.0f} MB (≤ {FLAT_RSS_MB}: flat)",
                    met=yes(r["rss_peak_mb"] <= FLAT_RSS_MB),
                )
            )
    if "sender" in res:
        r = res["sender"]
        rows.append(
            Row(
                "webhook sender, 1 process",
                rps=f"{r['per_s']:.0f}",
                bad=str(r["events"] - r["succeeded"]),
                target="deliveries/s to a local receiver (for information)",
                met=yes(r["succeeded"] == r["events"]),
            )
        )
    # The query count of a create must not grow with its lines.
    many = q.get("create_many", 99)
    fixed = many <= MAX_QUERIES and many == q.get("create", many)
    many_target = f"= 3 lines' count, <= {MAX_QUERIES} queries"
    if "create_many" in res:
        rows.append(
            web_row(
                "create, 100 lines",
                res["create_many"],
                q.get("create_many"),
                many_target + " (req/s for information)",
                fixed,
            )
        )
    elif "create_many" in q:
        rows.append(
            Row(
                "create, 100 lines",
                queries=str(q.get("create_many", "-")),
                target=many_target,
                met=yes(fixed),
            )
        )
    if "create_many" in bq:
        rows.append(
            Row(
                "create, 100 lines (baseline)",
                queries=str(bq["create_many"]),
                target=f"for reference: {bq.get('create', '-')} queries for 3 lines",
            )
        )
    if "detail" in res:
        r = res["detail"]
        ok, target = tail_ok(r), tail
        if "detail" not in base:
            ok, target = ok and r["rps"] >= DETAIL_RPS, f">= {DETAIL_RPS} req/s, {tail}"
        rows.append(web_row("detail", r, q.get("detail"), target, ok))
        if "detail" in base:
            rows.append(baseline_row("detail (baseline)", base["detail"], bq.get("detail")))
            rows.append(
                ratio_row(
                    "detail", r, base["detail"], pair("detail", "detail"), VS_BASELINE["detail"]
                )
            )
    for key, db in (("list_big", big), ("list_10k", DB_10K)):
        label = f"list, page of 20 ({db})"
        if key not in res:
            continue
        r = res[key]
        ok, target = tail_ok(r), tail
        if key == "list_10k" or "list" not in base:
            ok, target = ok and r["rps"] >= LIST_RPS, f">= {LIST_RPS} req/s, {tail}"
        rows.append(web_row(label, r, q.get("list"), target, ok))
        if key == "list_big" and "list" in base:
            blabel = f"list, page of 20 (baseline, {res['baseline_db']})"
            rows.append(baseline_row(blabel, base["list"], bq.get("list")))
            rows.append(
                ratio_row("list", r, base["list"], pair("list", "list"), VS_BASELINE["list"])
            )
    if "list_big" in res and "list_10k" in res:
        small, large = res["list_10k"], res["list_big"]
        rps_ratio = small["rps"] / max(large["rps"], 1e-9)
        p50_ratio = large["p50_us"] / max(small["p50_us"], 1)
        rows.append(
            Row(
                "list, 1M vs 10k",
                rps=f"{rps_ratio:.2f}x",
                p50=f"{p50_ratio:.2f}x",
                target=f"req/s at 10k <= {LIST_GROWTH}x req/s at 1M (p50: 1M / 10k)",
                met=yes(rps_ratio <= LIST_GROWTH),
            )
        )
    if "processing" in res:
        p = res["processing"]
        growth = p["rss_end_mb"] / p["rss_first_batch_mb"]
        ok = (
            p["orders_per_s"] >= PROCESS_RATE
            and growth <= MEMORY_GROWTH
            and p["pending_after"] == 0
            and p["failed"] == 0
        )
        rows.append(
            Row(
                f"processing, {p['pending_before'] // 1000}k pending",
                rps=f"{p['orders_per_s']:.0f}",
                bad=str(p["failed"] + p["pending_after"] + p["warnings_logged"]),
                target=f">= {PROCESS_RATE} orders/s, RSS end <= {MEMORY_GROWTH}x first batch",
                met=yes(ok),
            )
        )
    if "pgbench" in res:
        g = res["pgbench"]
        share = ""
        if "create" in res:
            share = f"create = {res['create']['rps'] / g['tps']:.0%} of this"
        rows.append(
            Row(
                "pgbench, create-order SQL",
                rps=f"{g['tps']:.0f}",
                bad=str(g.get("failed", 0)),
                target=share or "ceiling",
            )
        )
    return rows


WEB_LABELS = {"create": "create", "create_many": "create, 100 lines", "detail": "detail"}

COLUMNS = (
    "scenario",
    "req/s",
    "p50 ms",
    "p99 ms",
    "p99/p50",
    "queries/req",
    "CPU ms/req app + PG",
    "non-2xx/errors",
    "target",
    "met",
)
RIGHT = {1, 2, 3, 4, 5, 6}  # the figures' columns


def cells(row: Row) -> list[str]:
    return [
        row.scenario,
        row.rps,
        row.p50,
        row.p99,
        row.tail,
        row.queries,
        row.cpu,
        row.bad,
        row.target,
        row.met,
    ]


def text_table(rows: list[Row]) -> str:
    table = [list(COLUMNS), *[cells(r) for r in rows]]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    lines = []
    for n, line in enumerate(table):
        lines.append(
            "  ".join(
                c.rjust(widths[i]) if i in RIGHT else c.ljust(widths[i]) for i, c in enumerate(line)
            ).rstrip()
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: list[Row]) -> str:
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "|".join("---:" if i in RIGHT else "---" for i in range(len(COLUMNS))) + "|",
    ]
    lines += ["| " + " | ".join(cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def machine() -> dict:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu": model,
        "postgres": psql("postgres", "SHOW server_version").strip(),
        "python": platform.python_version(),
    }


def details(res: dict, args) -> list[str]:
    m = res["machine"]
    out = [
        f"Machine: {m['cpus']} CPUs ({m['cpu']}), PostgreSQL {m['postgres']}, "
        f"Python {m['python']}; wrk -t{args.wrk_threads} -c{args.connections}, "
        f"{args.duration} s per scenario after {args.warmup} s of warm-up.",
    ]
    if "server" in res:
        out.append(
            f"gunicorn: {res['server']['workers']} workers x "
            f"{res['server']['threads']} threads (DEBUG off, Redis throttling, "
            f"one access log line per request)."
        )
    for key in ("orders_big", "orders_10k"):
        if key in res:
            out.append(
                f"{key.replace('orders_', 'Orders in the ')} database at the start: {res[key]:,}."
            )
    if "baseline_server" in res:
        b = res["baseline_server"]
        out.append(
            f"Baseline (bench/baseline, a typical DRF build): the same gunicorn with "
            f"{b['workers']} workers x {b['threads']} threads (command-line options, "
            f"gunicorn's access log), DEBUG off, no throttling; {res['baseline_db']} held "
            f"{res['baseline_orders']:,} orders at the start. Project and baseline took "
            f"turns, {args.rounds} round(s) each of {args.duration} s (warm-up before the "
            f"first only), one loaded at a time; figures are the medians of the rounds."
        )
    labels = {
        **WEB_LABELS,
        "list_big": f"list ({res['main_db']})",
        "list_10k": f"list ({DB_10K})",
    }
    measured = [(label, res[key]) for key, label in labels.items() if key in res]
    blabels = {"create": "create", "detail": "detail", "list": "list"}
    measured += [
        (f"{label} (baseline, {res['baseline_db']})", res["baseline"][key])
        for key, label in blabels.items()
        if key in res.get("baseline", {})
    ]
    for label, r in measured:
        cpu = r["cpu"]
        rounds = r.get("rounds", [])
        by_round = (
            f" req/s by round: {', '.join(f'{x:.0f}' for x in rounds)};" if len(rounds) > 1 else ""
        )
        out.append(
            f"{label}:{by_round} in the app (access log) p50 {r['app_p50_ms']:.1f} ms, p99 "
            f"{r['app_p99_ms']:.1f} ms; CPU per request: gunicorn {cpu['app_ms']:.1f} ms, "
            f"PostgreSQL {cpu['pg_ms']:.1f} ms (of which {cpu.get('pg_ended_ms', 0):.1f} ms in "
            f"processes that ended: parallel workers, autovacuum), wrk {cpu['wrk_ms']:.1f} ms; "
            f"machine busy {cpu['busy']:.0%}, other work {cpu['other']:.0%}."
        )
    if "page1_big" in res:
        out.append(
            "Lines on the list's page 1 (20 orders): "
            + ", ".join(
                f"{res[key]} at {label}"
                for key, label in (
                    ("page1_big", res["main_db"]),
                    ("page1_10k", DB_10K),
                    ("page1_baseline", res.get("baseline_db")),
                )
                if key in res
            )
            + "."
        )
    if "processing" in res:
        p = res["processing"]
        out.append(
            f"Processing: {p['processed']:,} orders in {p['seconds']:.1f} s, "
            f"{p['batches']} batches of {p['batch_size']}, {p['failed']} failed, "
            f"{p['pending_after']} left pending, {p['warnings_logged']} warnings logged; "
            f"RSS {p['rss_start_mb']:.0f} MB before, {p['rss_first_batch_mb']:.0f} MB after "
            f"the first batch, {p['rss_end_mb']:.0f} MB at the end, peak "
            f"{p['rss_peak_mb']:.0f} MB."
        )
    if "pgbench" in res:
        g = res["pgbench"]
        out.append(
            f"pgbench: 8 clients, 2 threads, default durable settings; "
            f"{g.get('latency_ms', 0):.1f} ms average latency."
        )
    out.append(f"Run took {time.monotonic() - STARTED:.0f} s.")
    return out


def write_results(rows: list[Row], notes: list[str], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%d %H:%M %Z")
    path.write_text(
        f"# Benchmark, {stamp}\n\nMade by `make bench` (bench/run.py).\n\n"
        + markdown_table(rows)
        + "\n\n"
        + "\n".join(f"- {n}" for n in notes)
        + "\n"
    )


# --- main ---------------------------------------------------------------------------


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the 10k database for everything, short runs (a smoke test)",
    )
    parser.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help=f"comma-separated subset of {', '.join(SCENARIOS)}",
    )
    # On 2 cores, 2 sync workers (one per core) measured best; more workers or
    # threads only add switching. The default stays what production runs.
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: gunicorn.conf.py)")
    parser.add_argument(
        "--threads", type=int, help="gunicorn threads per worker (default: gunicorn.conf.py)"
    )
    parser.add_argument(
        "--server",
        choices=("gunicorn", "granian"),
        default="gunicorn",
        help="the project's WSGI server (granian: `.venv/bin/pip install granian` first)",
    )
    parser.add_argument(
        "--connections",
        "-c",
        type=int,
        # Throughput is flat from 4 connections up on 2 cores; more only
        # lengthens the queue in front of gunicorn (and the latency).
        default=16,
        help="wrk connections (default 16)",
    )
    parser.add_argument("--wrk-threads", "-t", type=int, default=2, help="wrk threads")
    parser.add_argument(
        "--duration", "-d", type=int, help="seconds measured per scenario (default 20; --quick 5)"
    )
    parser.add_argument("--warmup", type=int, help="seconds of warm-up (default 5; --quick 2)")
    parser.add_argument(
        "--processing-orders",
        type=int,
        help="pending orders to process (default 100000; --quick 10000)",
    )
    parser.add_argument(
        "--no-baseline",
        action="store_true",
        help="leave out the baseline (bench/baseline): the project alone, absolute targets",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        help="rounds of create, detail and list, project and baseline in turn "
        "(default 3; --quick 1); the table shows the medians",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=8001,
        help="the project's gunicorn (default 8001); the baseline's is this + 2",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="Markdown results (default bench/results/last.md for a full run, "
        "else bench/results/partial.md)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    args = parser.parse_args()
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.only) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    args.duration = args.duration or (5 if args.quick else 20)
    args.warmup = (2 if args.quick else 5) if args.warmup is None else args.warmup
    args.processing_orders = args.processing_orders or (10_000 if args.quick else 100_000)
    args.rounds = args.rounds or (1 if args.quick else 3)
    if args.out is None:
        full = not args.quick and set(args.only) == set(SCENARIOS)
        args.out = BENCH / "results" / ("last.md" if full else "partial.md")
    return args


def main() -> int:
    args = parse_args()
    wanted = set(args.only)
    big = DB_10K if args.quick else DB_1M
    secret = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(50))
    tmp = Path(tempfile.mkdtemp(prefix="orders-bench-"))
    res: dict = {"main_db": big}
    failed = False
    try:
        ensure_services()
        res["machine"] = machine()
        log(f"machine: {res['machine']}; temporary files in {tmp}")
        web = wanted & {"create", "create_many", "detail", "list"}
        if web or "queries" in wanted:
            res["orders_big"] = ensure_seeded(big)
            data, _ = prepare(big, secret, tmp)
        if "list" in wanted and not args.quick:
            res["orders_10k"] = ensure_seeded(DB_10K)
        # The web scenarios' targets include their query counts: counted with them.
        if web or "queries" in wanted:
            log(f"{big}: counting SQL statements per request")
            res["queries"] = django_job(
                "queries",
                big,
                DEBUG="1",
                SECRET_KEY=secret,
                ALLOWED_HOSTS="testserver",
                REDIS_URL=redis_url(big),
                ACCESS_LOG_LEVEL="WARNING",  # no access line per counted request
                # As for gunicorn: the bench customers hold many open orders.
                MAX_OPEN_ORDERS_PER_CUSTOMER="100000000",
            )
            show_queries(res["queries"], tmp / "queries.json")
        vs = [] if args.no_baseline else [s for s in BASELINE_SCENARIOS if s in wanted]
        bdata = None
        if vs:
            bdb = res["baseline_db"] = BASELINE_DBS[big]
            res["baseline_orders"] = ensure_baseline_seeded(bdb, SEEDS[big], secret)
            bdata = baseline_prepare(bdb, secret, tmp)
            log(f"{bdb}: counting SQL statements per request")
            res["baseline_queries"] = baseline_job(
                "queries", bdb, secret, DEBUG="0", ALLOWED_HOSTS="testserver"
            )
            show_queries(res["baseline_queries"], tmp / "baseline-queries.json")
            res["baseline"] = {}
        if web:
            with contextlib.ExitStack() as servers:
                server = servers.enter_context(gunicorn(big, args, secret, tmp, big))
                res["server"] = {"workers": server.workers, "threads": server.threads}
                base = None
                if vs:
                    # Up beside the project's: each stays idle while the other is loaded.
                    base = servers.enter_context(
                        baseline_gunicorn(
                            res["baseline_db"], args, secret, tmp, server.workers, server.threads
                        )
                    )
                    res["baseline_server"] = {"workers": base.workers, "threads": base.threads}

                def both(key, name, script, *extra):
                    mine, theirs = side_by_side(
                        server, base if key in vs else None, name, script, args, data, bdata, *extra
                    )
                    if theirs is not None:
                        res["baseline"][key] = theirs
                    return mine

                # 100-line orders first: the 3-line creates then push them off
                # page 1, which the list scenario reads (page 1 is the newest).
                if "create_many" in wanted:
                    res["create_many"] = load(
                        server, "create, 100 lines", "create.lua", args, data, "many"
                    )
                if "create" in wanted:
                    res["create"] = both("create", "create", "create.lua", "demo")
                if "webhooks" in wanted and "create" in wanted:
                    res["create_webhooks"] = webhooks_on(server, args, data, big, secret, tmp)
                if "detail" in wanted:
                    res["detail"] = both("detail", "detail", "detail.lua")
                if "list" in wanted:
                    res["page1_big"] = page1_lines(big)
                    if "list" in vs:
                        res["page1_baseline"] = page1_lines(res["baseline_db"], "shop")
                    res["list_big"] = both("list", f"list ({big})", "list.lua")
        if "list" in wanted and not args.quick:
            small_data, _ = prepare(DB_10K, secret, tmp)
            with gunicorn(DB_10K, args, secret, tmp, DB_10K) as server:
                res["page1_10k"] = page1_lines(DB_10K)
                res["list_10k"] = load(server, f"list ({DB_10K})", "list.lua", args, small_data)
        if "processing" in wanted:
            res["processing"] = processing(args, secret)
        if "pgbench" in wanted:
            res["pgbench"] = pgbench(args, secret)
        if "webhooks" in wanted:
            res["sender"] = sender(args, secret)
        if "backup" in wanted:
            ensure_seeded(big)
            res["backup"] = backup(args, secret, big, tmp)
    except KeyboardInterrupt:
        log("interrupted")
        failed = True
    except (BenchError, subprocess.TimeoutExpired) as error:
        log(f"failed: {error}")
        failed = True

    rows = build_rows(res)
    if rows:
        notes = details(res, args) if "machine" in res else []
        print("\n" + text_table(rows) + "\n")
        for note in notes:
            print(note)
        out = args.out
        if failed and out == BENCH / "results" / "last.md":
            out = BENCH / "results" / "partial.md"  # keep the last full run's table
        write_results(rows, notes, out)
        shown = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out
        print(f"\nWritten to {shown}")
    if args.keep or failed:
        print(f"Logs and data kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
