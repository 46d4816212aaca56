"""Scale rehearsal on one machine (SPEC §12; `make bench-scale`): the
scaled-out setup run for real, measured against the plain one.

1. A seeded database (bench/run.py's seeding: `seed_demo --top-up`; 100,000
   orders by default, --orders N, 10,000 with --quick) in
   `orders_scale_<N>`, kept for the next run like bench/run.py's databases,
   and the streaming replica of the whole cluster (`bin/pg-replica start`,
   port 5433), waited for until it has replayed the seed and the bench users.
2. Web: bench/run.py's list (staff, page of 20, newest first) and detail
   (staff, a sample of 2,000 orders) wrk scripts against four setups, all up
   at once and loaded one at a time, taking turns scenario by scenario:
   - one web process group: one gunicorn with the project's default workers
     (gunicorn.conf.py: one sync worker per core), wrk straight at it;
   - two web process groups behind nginx (deploy/nginx/nginx.conf with an
     upstream of both): two gunicorns with half the default workers each
     (--group-workers), so the two setups run as many workers on the same
     cores and differ by the proxy and the split;
   each without a replica and with DATABASE_REPLICA_URLS pointing at it (the
   bench's staff user never writes, so it is never pinned to the primary:
   its list reads the replica). Order detail is served from the Redis cache,
   primed over the whole sample before the first detail run: the replica
   hardly matters to it.
   Per setup: req/s, p50, p99, non-2xx/socket errors/ERROR log lines, the
   app's own time (access log), the CPU per request of gunicorn, nginx and
   the PostgreSQL backends of the primary and of the replica, and the
   database transactions per request on each (pg_stat_database, approximate:
   a backend reports its counts at most once a second, an idle one up to 10 s
   late, so a run may be credited some of the previous run's).
3. Processing: --processing-orders pending orders (20,000; 5,000 with
   --quick) drained by one `orders` Celery worker, then (afresh, the same
   orders) by two, each `--pool=prefork --concurrency=1` on the Redis broker,
   Redis database 7 of its own (so the real `orders` queue there touches
   nothing else), one process_pending_orders task enqueued per worker
   (each drains until nothing is left; batches are claimed with SELECT ...
   FOR UPDATE SKIP LOCKED). Orders/s from the enqueue to the last status
   event, the split between the workers (their log lines), and the check
   that every order was processed exactly once: no order left pending or
   failed, one status_changed event, one outbox order.status_changed event
   and one confirmation e-mail per order.

One machine with 2 cores bounds what this can show: two web groups, nginx, a
replica, the primary, Redis, the workers and wrk all compete for the same
CPU, so the figures show that the setup works and what it costs, not the
gains of separate machines. The output and the results file say so.

The tables are printed and written to bench/results/scale-last.md (with the
date, the machine and the command). What it starts it stops: gunicorns,
nginx, Celery workers. The replica is left running (the test suite reuses
it: `bin/pg-replica start` finds it). Redis databases 6 (web) and 7
(processing) are the rehearsal's own, flushed before and after; the
processing databases (orders_scale_proc, orders_scale_proc_tpl) are made
afresh and dropped at the end; orders_scale_<N> is kept (--drop-web-db to
drop it too). Temporary files go to a temporary folder, removed at the end
unless --keep or a failure.

    make bench-scale                          # ~7.5 min (+0.5 the first time)
    make bench-scale BENCH_ARGS="--quick"     # ~2 min smoke run
    .venv/bin/python bench/scale.py --help
"""

import argparse
import ast
import contextlib
import json
import os
import re
import resource
import secrets
import shlex
import shutil
import string
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))

# bench/run.py: seeding, tokens, gunicorn, wrk, CPU accounting; bench/soak.py:
# processes with a log that can be waited on and scanned.
import run as bench
import soak

ROOT, BENCH, PYTHON = bench.ROOT, bench.BENCH, bench.PYTHON
CELERY = soak.CELERY
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
NGINX_CONF = ROOT / "deploy" / "nginx" / "nginx.conf"
PG_REPLICA = ROOT / "bin" / "pg-replica"
REPLICA_PORT = int(os.environ.get("REPLICA_PORT", "5433"))
REPLICA_DIR = Path(os.environ.get("REPLICA_DIR", f"/tmp/orders-pg-replica-{REPLICA_PORT}"))  # noqa: S108
REPLICA_URL = "postgres://postgres@127.0.0.1:{port}/{db}"

DEFAULT_ORDERS, QUICK_ORDERS = 100_000, 10_000
DEFAULT_PROCESSING, QUICK_PROCESSING = 20_000, 5_000
# Redis databases of the rehearsal's own (bench/run.py uses 1 and 2,
# bench/flame.py 3, bench/soak.py 5, the tests and CI 0).
WEB_REDIS_DB, PROC_REDIS_DB = 6, 7
PROC_DB, PROC_TEMPLATE = "orders_scale_proc", "orders_scale_proc_tpl"
# One staff user reads everything here; the per-user throttle (20,000/min by
# default) is for people, not for a load test. It is still checked in Redis.
THROTTLE_USER_RATE = "100000000/min"

CAVEAT = (
    "One machine with {cpus} cores bounds what this can show: the two web groups, nginx, "
    "the replica, the primary, Redis, the workers and wrk all run on the same {cpus} cores "
    "and compete for the same CPU, so these figures show that the scaled-out setup works "
    "and what it costs here, not the gains of separate machines (a replica on its own "
    "machine takes the list's reads off the primary's CPU; two web groups on two machines "
    "double the web's CPU)."
)

log = bench.log
BenchError = bench.BenchError


def web_db_name(orders: int) -> str:
    return f"orders_scale_{orders // 1000}k" if orders % 1000 == 0 else f"orders_scale_{orders}"


def redis_flush(number: int) -> None:
    bench.run(["redis-cli", "-h", "127.0.0.1", "-n", str(number), "FLUSHDB"], quiet=True)


def redis_url(number: int) -> str:
    return bench.REDIS_URL.removesuffix("/0") + f"/{number}"


# --- the replica --------------------------------------------------------------------


def replica_start() -> float:
    """`bin/pg-replica start` (makes it, starts it, or finds it running); seconds."""
    started = time.monotonic()
    result = bench.run(["bash", PG_REPLICA, "start"], quiet=True)
    for line in (result.stdout + result.stderr).splitlines():
        log(f"  {line}")
    return time.monotonic() - started


def replica_catch_up(what: str, timeout: float = 300) -> float:
    """Wait until the replica has replayed the primary's WAL as of now; seconds."""
    started = time.monotonic()
    lsn = bench.psql("postgres", "SELECT pg_current_wal_lsn()").strip()
    sql = "SELECT pg_last_wal_replay_lsn() >= :'lsn'::pg_lsn"
    while time.monotonic() - started < timeout:
        if bench.psql("postgres", sql, port=REPLICA_PORT, lsn=lsn).strip() == "t":
            took = time.monotonic() - started
            log(f"replica: replayed {what} (up to {lsn}) after {took:.1f} s")
            return took
        time.sleep(0.2)
    raise BenchError(f"the replica did not replay up to {lsn} within {timeout:.0f} s")


def replica_postmaster_pid() -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int((REPLICA_DIR / "postmaster.pid").read_text().split()[0])
    return None


def xacts(db: str, *, replica: bool) -> int:
    sql = "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = :'db'"
    out = bench.psql("postgres", sql, port=REPLICA_PORT if replica else None, db=db)
    return int(out.strip() or 0)


# --- web setups ---------------------------------------------------------------------


@dataclass
class Setup:
    key: str
    label: str
    replica: bool
    servers: list  # bench.Server
    url: str
    nginx: soak.Proc | None = None
    workers: int = 0
    results: dict = field(default_factory=dict)  # scenario -> [result per round]


def gunicorn_env(db: str, secret: str, port: int, workers: int, **extra: str) -> dict:
    """bench/run.py's gunicorn environment (production settings), on this port."""
    return bench.base_env(
        DEBUG="0",
        SECRET_KEY=secret,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="0",
        DATABASE_URL=bench.PG_URL.format(db),
        REDIS_URL=redis_url(WEB_REDIS_DB),
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS=str(workers),
        JWT_ACCESS_MINUTES="240",
        MAX_OPEN_ORDERS_PER_CUSTOMER="100000000",
        THROTTLE_USER_RATE=THROTTLE_USER_RATE,
        **extra,
    )


def default_workers() -> tuple[int, int]:
    """gunicorn.conf.py's workers and threads with no GUNICORN_* set."""
    env = {k: v for k, v in bench.base_env().items() if not k.startswith("GUNICORN_")}
    read = "import runpy; c = runpy.run_path('gunicorn.conf.py'); print(c['workers'], c['threads'])"
    out = bench.run([PYTHON, "-c", read], env=env, quiet=True).stdout.split()
    return int(out[0]), int(out[1])


def start_gunicorn(stack, db, secret, tmp, port, workers, label, **extra) -> bench.Server:
    if not bench.port_free(port):
        raise BenchError(f"127.0.0.1:{port} is in use: stop what listens there or --port")
    env = gunicorn_env(db, secret, port, workers, **extra)
    cmd = [bench.GUNICORN, "orders_project.wsgi:application", "--config", "gunicorn.conf.py"]
    # Each its own control socket: gunicorn's default is one path per user.
    cmd += ["--control-socket", str(tmp / f"gunicorn-{label}.ctl")]
    server = stack.enter_context(
        bench.serve(cmd, ROOT, env, port, db, tmp / f"gunicorn-{label}.log", workers, 1)
    )
    server.read_log()  # from here on: what the load makes it log
    return server


def start_nginx(stack, tmp: Path, port: int, upstreams: list[int], label: str) -> soak.Proc:
    """Debian's nginx with the project's proxy configuration, its upstream
    both groups (round robin, nginx's default), on `port`."""
    if not Path(NGINX).exists():
        log("nginx is missing: installing nginx-light")
        bench.run(["apt-get", "install", "-y", "-q", "nginx-light"], quiet=True)
    if not bench.port_free(port):
        raise BenchError(f"127.0.0.1:{port} is in use: nginx needs it (or --port)")
    folder = tmp / f"nginx-{label}"
    folder.mkdir()
    conf = NGINX_CONF.read_text()
    servers = "\n        ".join(f"server 127.0.0.1:{p};" for p in upstreams)
    for old, new in (
        ("server web:8000;", servers),
        ("listen 8000;", f"listen 127.0.0.1:{port};"),
        ("pid /tmp/nginx.pid;", f"pid {folder}/nginx.pid;"),
        ("http {", f"http {{\n    client_body_temp_path {folder}/body;"),
    ):
        if old not in conf:
            raise BenchError(f"{NGINX_CONF.relative_to(ROOT)} has no {old!r} any more")
        conf = conf.replace(old, new, 1)
    (folder / "nginx.conf").write_text(conf)
    cmd = [NGINX, "-c", folder / "nginx.conf", "-p", folder, "-g", "daemon off;"]
    proc = soak.start(f"nginx-{label}", cmd, bench.base_env(), tmp)
    stack.callback(soak.stop, proc)
    deadline = time.monotonic() + 20
    while bench.port_free(port):
        if proc.process.poll() is not None or time.monotonic() > deadline:
            raise BenchError(f"nginx did not start:\n{proc.log.read_text()[-2000:]}")
        time.sleep(0.1)
    return proc


def start_setups(stack, args, db: str, secret: str, tmp: Path, workers: int) -> list[Setup]:
    replica = {"DATABASE_REPLICA_URLS": REPLICA_URL.format(port=REPLICA_PORT, db=db)}
    half = args.group_workers
    p = args.port
    setups = []
    for n, (rep, extra) in enumerate(((False, {}), (True, replica))):
        suffix = ", replica" if rep else ""
        tag = "-replica" if rep else ""
        one = start_gunicorn(stack, db, secret, tmp, p + n, workers, f"one{tag}", **extra)
        setups.append(
            Setup(f"one{tag}", f"1 group, direct{suffix}", rep, [one], one.url, workers=workers)
        )
        # Behind one proxy: the app reads the client's address from it.
        behind = {**extra, "NUM_PROXIES": "1"}
        ports = [p + 2 + 2 * n, p + 3 + 2 * n]
        groups = [
            start_gunicorn(stack, db, secret, tmp, port, half, f"two{tag}-{i + 1}", **behind)
            for i, port in enumerate(ports)
        ]
        proxy = start_nginx(stack, tmp, p + 6 + n, ports, f"two{tag}")
        setups.append(
            Setup(
                f"two{tag}",
                f"2 groups via nginx{suffix}",
                rep,
                groups,
                f"http://127.0.0.1:{p + 6 + n}",
                nginx=proxy,
                workers=2 * half,
            )
        )
    for setup in setups:
        check_health(setup)
    return setups


def check_health(setup: Setup) -> None:
    with urllib.request.urlopen(f"{setup.url}/healthz", timeout=5) as response:  # noqa: S310
        if response.status != 200:
            raise BenchError(f"{setup.label}: /healthz answered {response.status}")


def lua_value(data: Path, key: str) -> str:
    match = re.search(rf"^\s*{key} = (.*),$", data.read_text(), re.MULTILINE)
    if not match:
        raise BenchError(f"{data} has no {key}")
    return match[1]


def prime_detail_cache(setup: Setup, data: Path) -> float:
    """GET every order of the detail sample once, so each setup's detail run
    finds the Redis cache warm (it is shared: setups measured later would
    otherwise get a warmer one). Seconds."""
    token = ast.literal_eval(lua_value(data, "staff_token"))
    ids = re.findall(r"\d+", lua_value(data, "order_ids"))
    started = time.monotonic()

    def get(pk: str) -> int:
        request = urllib.request.Request(  # noqa: S310 (the bench's own loopback server)
            f"{setup.url}/api/v1/orders/{pk}/", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status

    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(get, ids))
    bad = sum(1 for s in statuses if s != 200)
    took = time.monotonic() - started
    log(f"detail cache primed: {len(ids)} orders in {took:.1f} s ({bad} not 200)")
    if bad:
        raise BenchError(f"priming the detail cache: {bad} answers were not 200")
    for server in setup.servers:
        server.read_log()
    return took


# --- CPU accounting -----------------------------------------------------------------


@dataclass
class Meter:
    """CPU seconds of one setup's gunicorns and nginx, of the PostgreSQL
    backends of `db` on the primary and on the replica (with the processes
    each postmaster reaped meanwhile: parallel workers, connections that
    ended), of wrk, and of the machine, between start() and stop(); and the
    database transactions on each."""

    setup: Setup
    db: str
    before: dict = field(default_factory=dict)

    def _snapshot(self) -> dict:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        apps = [pid for s in self.setup.servers for pid in bench.group_pids(s.process.pid)]
        proxy = bench.group_pids(self.setup.nginx.process.pid) if self.setup.nginx else []
        return {
            "wrk": children.ru_utime + children.ru_stime,
            "machine": bench.machine_busy(),
            "app": bench.cpu_of(apps),
            "nginx": bench.cpu_of(proxy),
            "pg_ended": bench.exited_children_cpu(bench.postmaster_pid()),
            "pg": bench.cpu_of(bench.backend_pids(self.db)),
            "rep_ended": bench.exited_children_cpu(replica_postmaster_pid()),
            "rep": bench.cpu_of(bench.backend_pids(self.db, port=REPLICA_PORT)),
            "xact_pg": xacts(self.db, replica=False),
            "xact_rep": xacts(self.db, replica=True),
        }

    def start(self) -> None:
        self.before = self._snapshot()

    def stop(self, requests: int) -> dict:
        after, before = self._snapshot(), self.before

        def spent(kind):
            return sum(t - before[kind].get(pid, 0.0) for pid, t in after[kind].items())

        app, proxy, pg, rep = spent("app"), spent("nginx"), spent("pg"), spent("rep")
        # Reaped by each postmaster: this database's parallel workers and
        # ended connections, but also other clients' (the machine is shared).
        pg_ended = after["pg_ended"] - before["pg_ended"]
        rep_ended = after["rep_ended"] - before["rep_ended"]
        wrk_cpu = after["wrk"] - before["wrk"]
        cpus = os.cpu_count() or 1
        busy = after["machine"][0] - before["machine"][0]
        wall = max((after["machine"][1] - before["machine"][1]) / cpus, 1e-9)
        per = 1000 / max(requests, 1)
        return {
            "app_ms": app * per,
            "nginx_ms": proxy * per,
            "pg_ms": pg * per,
            "pg_ended_ms": pg_ended * per,
            "rep_ms": rep * per,
            "rep_ended_ms": rep_ended * per,
            "wrk_ms": wrk_cpu * per,
            "busy": busy / wall / cpus,
            "other": max(0.0, busy - app - proxy - pg - pg_ended - rep - rep_ended - wrk_cpu)
            / wall
            / cpus,
            "xact_pg": (after["xact_pg"] - before["xact_pg"]) / max(requests, 1),
            "xact_rep": (after["xact_rep"] - before["xact_rep"]) / max(requests, 1),
        }


def read_logs(setup: Setup) -> tuple[list[str], list[float]]:
    """ERROR lines and app times of its gunicorns since the last call."""
    problems, app_ms = [], []
    for server in setup.servers:
        p, ms = server.read_log()
        problems += p
        app_ms += ms
    return problems, app_ms


def nginx_errors(setup: Setup) -> int:
    """nginx's error lines so far ([error] and worse; [warn] would be its
    note that a response was buffered to a file)."""
    if setup.nginx is None:
        return 0
    text = setup.nginx.log.read_text(errors="replace")
    return len(re.findall(r"\[(?:error|crit|alert|emerg)\]", text))


def measure(setup: Setup, name: str, script: str, args, data: Path, db: str, warm: bool) -> dict:
    target = SimpleNamespace(url=setup.url)
    if warm and args.warmup:
        bench.wrk(target, script, args, data, args.warmup)
        read_logs(setup)
    proxy_errors = nginx_errors(setup)
    meter = Meter(setup, db)
    meter.start()
    result = bench.wrk(target, script, args, data, args.duration)
    result["cpu"] = meter.stop(result["requests"])
    result["log_problems"], app_ms = read_logs(setup)
    result["proxy_errors"] = nginx_errors(setup) - proxy_errors
    result["app_p50_ms"] = bench.percentile(app_ms, 50)
    result["app_p99_ms"] = bench.percentile(app_ms, 99)
    c = result["cpu"]
    errors = sum(result["socket_errors"].values())
    log(
        f"  {name}, {setup.label}: {result['rps']:.0f} req/s, p50 "
        f"{result['p50_us'] / 1000:.1f} ms, p99 {result['p99_us'] / 1000:.1f} ms, statuses "
        f"{result['statuses']}, socket errors {errors}, error log lines "
        f"{len(result['log_problems'])}, nginx errors {result['proxy_errors']}"
    )
    log(
        f"    CPU ms/req: gunicorn {c['app_ms']:.1f}, nginx {c['nginx_ms']:.1f}, primary "
        f"{c['pg_ms']:.1f} (+{c['pg_ended_ms']:.1f} ended), replica {c['rep_ms']:.1f} "
        f"(+{c['rep_ended_ms']:.1f} ended), wrk {c['wrk_ms']:.1f}; xacts/req primary "
        f"{c['xact_pg']:.2f}, replica {c['xact_rep']:.2f}; machine busy {c['busy']:.0%}, "
        f"other work {c['other']:.0%}"
    )
    if result["sample"]:
        log(f"    first unexpected response: {result['sample'][:300]}")
    for line in result["log_problems"][:5]:
        log(f"    log: {line[:300]}")
    return result


def web(args, db: str, secret: str, tmp: Path, data: Path) -> tuple[list[Setup], dict]:
    workers, threads = default_workers()
    if args.group_workers is None:
        args.group_workers = max(1, workers // 2)
    info = {"workers": workers, "threads": threads, "group_workers": args.group_workers}
    with contextlib.ExitStack() as stack:
        setups = start_setups(stack, args, db, secret, tmp, workers)
        log(
            f"web: 4 setups up; 1 group = gunicorn x {workers} workers, 2 groups = 2 gunicorns "
            f"x {args.group_workers} workers behind nginx (worker_processes auto)"
        )
        scenarios = (("list", "list.lua"), ("detail", "detail.lua"))
        for n in range(args.rounds):
            for name, script in scenarios:
                if name == "detail" and n == 0:
                    info["prime_seconds"] = prime_detail_cache(setups[0], data)
                label = f"{name} (round {n + 1}/{args.rounds})" if args.rounds > 1 else name
                # Every other round in reverse order: a drift of the machine's
                # speed (it is shared) then favours no setup.
                for setup in setups if n % 2 == 0 else setups[::-1]:
                    result = measure(setup, label, script, args, data, db, warm=n == 0)
                    setup.results.setdefault(name, []).append(result)
        log("web: stopping gunicorns and nginx")
    return setups, info


# --- processing ---------------------------------------------------------------------


ENQUEUE = """
import json, sys, time
import django
django.setup()
from orders.tasks import process_pending_orders
started = time.time()
for _ in range(int(sys.argv[1])):
    process_pending_orders.delay()
print("BENCH_JSON " + json.dumps({"enqueued_at": started}))
"""
PROCESSED_LINE = re.compile(r"Processed (\d+) pending orders, (\d+) failed, in (\d+) batches")


def enqueue(n: int, env: dict) -> dict:
    """Enqueue `n` process_pending_orders tasks (routed to `orders`) from a
    fresh process; when it started sending (time.time())."""
    env = {**env, "DJANGO_SETTINGS_MODULE": "orders_project.settings"}
    result = bench.run([PYTHON, "-c", ENQUEUE, str(n)], env=env, quiet=True)
    for line in reversed(result.stdout.splitlines()):
        if line.startswith("BENCH_JSON "):
            return json.loads(line.removeprefix("BENCH_JSON "))
    raise BenchError(
        f"enqueueing printed no result:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
    )


def proc_env(secret: str) -> dict:
    return bench.base_env(
        DEBUG="0",
        SECRET_KEY=secret,
        DATABASE_URL=bench.PG_URL.format(PROC_DB),
        REDIS_URL=redis_url(PROC_REDIS_DB),
        # The confirmation e-mails' sending tasks wait in Redis database 7
        # (no notifications worker here); should anything send, it stays in memory.
        EMAIL_URL="memorymail://",
    )


def proc_counts() -> dict:
    q = bench.psql
    statuses = dict(
        line.split("|")
        for line in q(PROC_DB, "SELECT status, count(*) FROM orders_order GROUP BY 1").split()
    )
    events = q(
        PROC_DB,
        "SELECT count(*), count(DISTINCT order_id) FROM orders_orderevent "
        "WHERE type = 'status_changed'",
    ).split("|")
    dup_events = q(
        PROC_DB,
        "SELECT count(*) FROM (SELECT order_id FROM orders_orderevent "
        "WHERE type = 'status_changed' GROUP BY 1 HAVING count(*) > 1) t",
    )
    outbox = q(
        PROC_DB,
        "SELECT count(*), count(DISTINCT aggregate_id) FROM core_event "
        "WHERE type = 'order.status_changed'",
    ).split("|")
    emails = q(
        PROC_DB,
        "SELECT count(*), count(DISTINCT order_id) FROM orders_orderemail "
        "WHERE kind = 'confirmation'",
    ).split("|")
    return {
        "statuses": {k: int(v) for k, v in statuses.items()},
        "events": int(events[0]),
        "event_orders": int(events[1]),
        "orders_with_2_events": int(dup_events),
        "outbox": int(outbox[0]),
        "outbox_orders": int(outbox[1]),
        "emails": int(emails[0]),
        "email_orders": int(emails[1]),
    }


def seed_processing(args) -> dict:
    log(f"{PROC_TEMPLATE}: recreating, seeding {args.processing_orders:,} pending orders")
    bench.recreate_db(PROC_TEMPLATE)
    bench.manage(PROC_TEMPLATE, "migrate", "--noinput", quiet=True)
    bench.manage(
        PROC_TEMPLATE,
        *("seed_demo", "--orders", str(args.processing_orders), "--status", "pending"),
        *("--seed", "1"),
        quiet=True,
    )
    bench.psql(PROC_TEMPLATE, "VACUUM ANALYZE")
    # The counts of a fresh copy, before any worker: the checks compare with them.
    clone_processing_db()
    before = proc_counts()
    log(f"{PROC_TEMPLATE}: {before}")
    return before


def clone_processing_db() -> None:
    bench.psql("postgres", f"DROP DATABASE IF EXISTS {PROC_DB} WITH (FORCE)")
    # FILE_COPY: the template's files copied (a checkpoint), not its every page in the WAL.
    bench.psql("postgres", f"CREATE DATABASE {PROC_DB} TEMPLATE {PROC_TEMPLATE} STRATEGY FILE_COPY")


def worker_cpu(workers: list) -> dict:
    pids = [pid for w in workers for pid in bench.group_pids(w.process.pid)]
    return {
        "workers": bench.cpu_of(pids),
        "pg": bench.cpu_of(bench.backend_pids(PROC_DB)),
        "pg_ended": bench.exited_children_cpu(bench.postmaster_pid()),
        "machine": bench.machine_busy(),
    }


def drain(n: int, args, secret: str, tmp: Path, before: dict) -> dict:
    """`n` orders workers drain a fresh copy of the pending orders."""
    clone_processing_db()
    redis_flush(PROC_REDIS_DB)
    env = proc_env(secret)
    nonce = secrets.token_hex(3)
    pending = before["statuses"].get("pending", 0)
    result: dict = {"workers": n, "pending_before": pending, "anomalies": []}
    with contextlib.ExitStack() as stack:
        workers = []
        for i in range(n):
            cmd = [CELERY, "-A", "orders_project", "worker", "-Q", "orders"]
            cmd += ["-n", f"scale-orders{i + 1}-{nonce}@%h", "--loglevel=INFO"]
            cmd += ["--pool=prefork", "--concurrency=1", "--without-mingle", "--without-gossip"]
            worker = soak.start(f"worker-{n}x-{i + 1}", cmd, env, tmp)
            stack.callback(soak.stop, worker)
            workers.append(worker)
        for worker in workers:
            soak.wait_for_line(worker, " ready.")
        cpu_before = worker_cpu(workers)
        sent = enqueue(n, env)
        enqueued_at, tasks = sent["enqueued_at"], n
        log(f"  {n} worker(s): {n} process_pending_orders task(s) enqueued")
        deadline = time.monotonic() + max(120, pending / 50)
        last, last_change = None, time.monotonic()
        while True:
            left = int(
                bench.psql(PROC_DB, "SELECT count(*) FROM orders_order WHERE status = 'pending'")
            )
            if left == 0:
                break
            if left != last:
                last, last_change = left, time.monotonic()
            for worker in workers:
                if worker.process.poll() is not None:
                    raise BenchError(f"{worker.name} exited ({worker.process.returncode})")
            if time.monotonic() - last_change > 10:
                # Every task ended with orders left (should not happen): one more.
                result["anomalies"].append(f"stalled at {left} pending: enqueued one more task")
                enqueue(1, env)
                tasks += 1
                last_change = time.monotonic()
            if time.monotonic() > deadline:
                raise BenchError(f"{left} orders still pending after the deadline")
            time.sleep(0.25)
        # The tasks end once they find nothing more to claim.
        done_by = time.monotonic() + 30
        while time.monotonic() < done_by:
            done = sum(w.log.read_text(errors="replace").count("succeeded in") for w in workers)
            if done >= tasks:
                break
            time.sleep(0.2)
        else:
            result["anomalies"].append(f"only {done} of {tasks} tasks logged success in 30 s")
        cpu_after = worker_cpu(workers)
        for worker in workers:
            soak.stop(worker)
    first, last_event = (
        float(x)
        for x in bench.psql(
            PROC_DB,
            "SELECT extract(epoch FROM min(created_at)), extract(epoch FROM max(created_at)) "
            "FROM orders_orderevent WHERE type = 'status_changed'",
        )
        .strip()
        .split("|")
    )
    by_worker = []
    warnings = 0
    for worker in workers:
        text = worker.log.read_text(errors="replace")
        by_worker.append(sum(int(m[1]) for m in PROCESSED_LINE.finditer(text)))
        worker.scan()
        warnings += sum(worker.warnings.values())
        for line in worker.problems[:5]:
            result["anomalies"].append(f"{worker.name}: {line[:200]}")
    after = proc_counts()
    processed = after["statuses"].get("processing", 0) - before["statuses"].get("processing", 0)
    seconds = last_event - enqueued_at
    spent = {
        k: sum(t - cpu_before[k].get(pid, 0.0) for pid, t in cpu_after[k].items())
        for k in ("workers", "pg")
    }
    spent["pg"] += cpu_after["pg_ended"] - cpu_before["pg_ended"]
    cpus = os.cpu_count() or 1
    busy = cpu_after["machine"][0] - cpu_before["machine"][0]
    wall = max((cpu_after["machine"][1] - cpu_before["machine"][1]) / cpus, 1e-9)
    new = {k: after[k] - before[k] for k in ("events", "outbox", "emails")}
    new_orders = {
        k: after[k] - before[k] for k in ("event_orders", "outbox_orders", "email_orders")
    }
    exactly_once = (
        after["statuses"].get("pending", 0) == 0
        and after["statuses"].get("failed", 0) == before["statuses"].get("failed", 0)
        and processed == pending
        and sum(by_worker) == pending
        and new["events"] == new_orders["event_orders"] == pending
        and after["orders_with_2_events"] == before["orders_with_2_events"]
        and new["outbox"] == new_orders["outbox_orders"] == pending
        and new["emails"] == new_orders["email_orders"] == pending
    )
    result.update(
        processed=processed,
        seconds=seconds,
        orders_per_s=processed / seconds if seconds > 0 else 0.0,
        pickup_s=first - enqueued_at,
        by_worker=by_worker,
        tasks=tasks,
        statuses=after["statuses"],
        new=new,
        new_orders=new_orders,
        orders_with_2_events=after["orders_with_2_events"] - before["orders_with_2_events"],
        cpu_workers_ms=spent["workers"] * 1000 / max(processed, 1),
        cpu_pg_ms=spent["pg"] * 1000 / max(processed, 1),
        busy=busy / wall / cpus,
        other=max(0.0, busy - spent["workers"] - spent["pg"]) / wall / cpus,
        warnings=warnings,
        exactly_once=exactly_once,
    )
    log(
        f"  {n} worker(s): {processed:,} orders in {seconds:.1f} s = "
        f"{result['orders_per_s']:.0f} orders/s (first status event {first - enqueued_at:.2f} s "
        f"after the enqueue); by worker {by_worker}; statuses {after['statuses']}; new "
        f"status events {new['events']:,} on {new_orders['event_orders']:,} orders, outbox "
        f"{new['outbox']:,}, e-mails {new['emails']:,}; exactly once: {exactly_once}; CPU "
        f"ms/order workers {result['cpu_workers_ms']:.2f} + PG {result['cpu_pg_ms']:.2f}; "
        f"machine busy {result['busy']:.0%} (other work {result['other']:.0%})"
    )
    for anomaly in result["anomalies"]:
        log(f"    anomaly: {anomaly}")
    return result


def processing(args, secret: str, tmp: Path) -> list[dict]:
    before = seed_processing(args)
    return [drain(n, args, secret, tmp, before) for n in (1, 2)]


# --- tables -------------------------------------------------------------------------


def median(values):
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def merged(runs: list[dict]) -> dict:
    return bench.merge_rounds(runs) | {
        "proxy_errors": sum(r["proxy_errors"] for r in runs),
        "cpu": {k: median([r["cpu"][k] for r in runs]) for k in runs[0]["cpu"]},
    }


def bad_cell(r: dict) -> str:
    parts = [f"{n} x {s}" for s, n in sorted(r["statuses"].items()) if not s.startswith("2")]
    parts += [f"{n} {kind}" for kind, n in r["socket_errors"].items() if n]
    if r["log_problems"]:
        parts.append(f"{len(r['log_problems'])} error log lines")
    if r["proxy_errors"]:
        parts.append(f"{r['proxy_errors']} nginx errors")
    return ", ".join(parts) or "0"


def round_notes(setups: list[Setup]) -> list[str]:
    """req/s of each round, when there were several: how much the machine moved."""
    notes, spread = [], 0.0
    for setup in setups:
        runs = setup.results
        if len(runs.get("list", [])) > 1:
            notes.append(
                f"{setup.label}: req/s by round, list "
                + ", ".join(f"{r['rps']:.0f}" for r in runs["list"])
                + "; detail "
                + ", ".join(f"{r['rps']:.0f}" for r in runs["detail"])
                + "."
            )
            for rounds in runs.values():
                rps = [r["rps"] for r in rounds]
                spread = max(spread, (max(rps) - min(rps)) / max(median(rps), 1e-9))
    if notes:
        notes.append(
            f"The rounds of one setup differed by up to {spread:.0%} of their median: "
            "differences between setups smaller than that are the machine's noise, not "
            "the setup's (CPU ms per request moves much less)."
        )
    return notes


def web_tables(setups: list[Setup]) -> tuple[list, list]:
    """(setup x figures, setup x scenario CPU split) as lists of rows, headers first."""
    main = [
        (
            "setup",
            "workers",
            "list req/s",
            "list p50 ms",
            "list p99 ms",
            "detail req/s",
            "detail p50 ms",
            "detail p99 ms",
            "non-2xx/errors",
        )
    ]
    split = [
        (
            "setup",
            "scenario",
            "gunicorn",
            "nginx",
            "PG primary",
            "PG replica",
            "wrk",
            "xacts/req primary",
            "xacts/req replica",
            "app p50/p99 ms",
            "machine busy (other)",
        )
    ]
    base = {}
    for setup in setups:
        got = {name: merged(runs) for name, runs in setup.results.items()}
        li, de = got["list"], got["detail"]
        base.setdefault("list", li["rps"])
        base.setdefault("detail", de["rps"])
        bad = bad_cell(li), bad_cell(de)
        main.append(
            (
                setup.label,
                str(setup.workers),
                f"{li['rps']:.0f} ({li['rps'] / base['list']:.2f}x)",
                f"{li['p50_us'] / 1000:.1f}",
                f"{li['p99_us'] / 1000:.1f}",
                f"{de['rps']:.0f} ({de['rps'] / base['detail']:.2f}x)",
                f"{de['p50_us'] / 1000:.1f}",
                f"{de['p99_us'] / 1000:.1f}",
                "0" if bad == ("0", "0") else f"list {bad[0]}; detail {bad[1]}",
            )
        )
        for name, r in got.items():
            c = r["cpu"]
            split.append(
                (
                    setup.label,
                    name,
                    f"{c['app_ms']:.1f}",
                    f"{c['nginx_ms']:.1f}" if setup.nginx else "-",
                    f"{c['pg_ms']:.1f} (+{c['pg_ended_ms']:.1f})",
                    f"{c['rep_ms']:.1f} (+{c['rep_ended_ms']:.1f})",
                    f"{c['wrk_ms']:.1f}",
                    f"{c['xact_pg']:.2f}",
                    f"{c['xact_rep']:.2f}",
                    f"{r['app_p50_ms']:.1f} / {r['app_p99_ms']:.1f}",
                    f"{c['busy']:.0%} ({c['other']:.0%})",
                )
            )
    return main, split


def processing_table(runs: list[dict]) -> list:
    rows = [
        (
            "orders workers",
            "pending orders",
            "seconds",
            "orders/s",
            "by worker",
            "CPU ms/order workers + PG",
            "left pending / failed",
            "status events (orders)",
            "outbox / e-mails",
            "exactly once",
        )
    ]
    one = runs[0]["orders_per_s"] if runs else 0
    for r in runs:
        s = r["statuses"]
        rows.append(
            (
                str(r["workers"]),
                f"{r['pending_before']:,}",
                f"{r['seconds']:.1f}",
                f"{r['orders_per_s']:.0f} ({r['orders_per_s'] / max(one, 1e-9):.2f}x)",
                " + ".join(f"{n:,}" for n in r["by_worker"]),
                f"{r['cpu_workers_ms']:.2f} + {r['cpu_pg_ms']:.2f}",
                f"{s.get('pending', 0)} / {s.get('failed', 0)}",
                f"{r['new']['events']:,} ({r['new_orders']['event_orders']:,})",
                f"{r['new']['outbox']:,} / {r['new']['emails']:,}",
                "yes" if r["exactly_once"] and not r["anomalies"] else "NO",
            )
        )
    return rows


def text_table(rows: list) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: list) -> str:
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "|".join("---" for _ in rows[0]) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(out)


# --- main ---------------------------------------------------------------------------


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="10k orders, short runs (smoke)")
    parser.add_argument(
        "--orders", type=int, help=f"orders in the web database (default {DEFAULT_ORDERS:,})"
    )
    parser.add_argument(
        "--processing-orders",
        type=int,
        help=f"pending orders to drain (default {DEFAULT_PROCESSING:,}; --quick "
        f"{QUICK_PROCESSING:,})",
    )
    parser.add_argument("--only", default="web,processing", help="web, processing or both")
    parser.add_argument(
        "--group-workers",
        type=int,
        help="gunicorn workers of each of the two groups (default: half the project's default)",
    )
    parser.add_argument("--connections", "-c", type=int, default=16, help="wrk connections")
    parser.add_argument("--wrk-threads", "-t", type=int, default=2, help="wrk threads")
    parser.add_argument("--duration", "-d", type=int, help="seconds per run (20; --quick 5)")
    parser.add_argument("--warmup", type=int, help="seconds of warm-up (5; --quick 2)")
    parser.add_argument(
        "--rounds",
        type=int,
        help="rounds of every run, every other one in reverse order; the tables show the "
        "medians (default 2; --quick 1)",
    )
    parser.add_argument(
        "--port", type=int, default=8301, help="first of 8 ports (gunicorns, then nginx)"
    )
    parser.add_argument(
        "--out", type=Path, default=BENCH / "results" / "scale-last.md", help="Markdown results"
    )
    parser.add_argument(
        "--drop-web-db", action="store_true", help="drop orders_scale_<N> at the end"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    args = parser.parse_args()
    args.only = {s.strip() for s in args.only.split(",") if s.strip()}
    if not args.only or args.only - {"web", "processing"}:
        parser.error("--only: web, processing or both")
    args.orders = args.orders or (QUICK_ORDERS if args.quick else DEFAULT_ORDERS)
    args.processing_orders = args.processing_orders or (
        QUICK_PROCESSING if args.quick else DEFAULT_PROCESSING
    )
    args.duration = args.duration or (5 if args.quick else 20)
    args.rounds = args.rounds or (1 if args.quick else 2)
    args.warmup = (2 if args.quick else 5) if args.warmup is None else args.warmup
    return args


def command() -> str:
    cmd = shlex.join([".venv/bin/python", "bench/scale.py", *sys.argv[1:]])
    if os.environ.get("MAKELEVEL"):
        shown = f'make bench-scale BENCH_ARGS="{shlex.join(sys.argv[1:])}"'
        return f"{shown} (= {cmd})" if sys.argv[1:] else f"make bench-scale (= {cmd})"
    return cmd


def report(res: dict, args, failed: bool) -> str:
    m = res["machine"]
    lines = [
        f"# Scale rehearsal, {time.strftime('%Y-%m-%d %H:%M %Z')}",
        "",
        f"Made by `{command()}` (bench/scale.py){' — FAILED, partial' if failed else ''}.",
        "",
        f"Machine: `nproc` {m['nproc']}, {m['cpu']}; PostgreSQL {m['postgres']} (primary on "
        f"5432, streaming replica on {REPLICA_PORT} on the same machine), Python {m['python']}. "
        f"Wall time {res.get('wall', 0):.0f} s.",
        "",
        "**Caveat.** " + CAVEAT.format(cpus=m["nproc"]),
        "",
    ]
    if "web" in res:
        w = res["web_info"]
        lines += [
            "## Web: staff order list (page of 20) and order detail",
            "",
            f"Database `{res['db']}`, {res['orders']:,} orders. wrk -t{args.wrk_threads} "
            f"-c{args.connections}, {args.duration} s per run after {args.warmup} s of "
            f"warm-up (first round only), {args.rounds} round(s) (medians; every other round "
            f"in reverse order); the four setups up at once, loaded one at a time in turn. "
            f"1 group: one gunicorn with the project's default "
            f"{w['workers']} sync workers x {w['threads']} thread, wrk straight at it. 2 groups: "
            f"two gunicorns with {w['group_workers']} worker(s) each (as many workers in all "
            f"on the same cores) behind nginx (deploy/nginx/nginx.conf, upstream of both, "
            f"round robin). Replica: DATABASE_REPLICA_URLS at the streaming replica; the "
            f"staff user never writes, so its list reads go there. (x): req/s against the "
            f"first row.",
            "",
            markdown_table(res["web"][0]),
            "",
            "CPU ms per request by process (PostgreSQL: the backends of the bench database; "
            "in brackets the processes each postmaster reaped meanwhile, of any database: "
            "parallel workers, but also other clients' ended connections on this shared "
            "machine), database transactions per request on each server (pg_stat_database; "
            "approximate: a backend reports its counts at most once a second, an idle one up "
            "to 10 s late, so a run may be credited some of the previous run's), the app's "
            "own time from its access log, and how busy the "
            "machine was (in brackets: work of no process counted here — the WAL replay, "
            "Redis, the kernel, whatever else runs on the machine):",
            "",
            markdown_table(res["web"][1]),
            "",
            "Order detail is served from the Redis cache of each order's JSON (primed over "
            f"the {res.get('sample', 2000):,} orders of the sample before the first detail run, "
            "in "
            f"{w.get('prime_seconds', 0):.1f} s): it reads no database once cached, so the "
            "replica matters little to it — the replica rows for detail show its cost, not a "
            "gain. In the replica setups the list reads only the replica once a worker has "
            "its user cached: a small xacts/req on the primary there is earlier runs' "
            "backends reporting late.",
            "",
        ]
    if "processing" in res:
        lines += [
            "## Processing: pending orders drained by `orders` workers",
            "",
            f"Afresh for each row: `{PROC_DB}` copied from `{PROC_TEMPLATE}` (seed_demo "
            f"--status pending), Redis database {PROC_REDIS_DB} flushed; real Celery workers "
            "(`celery -A orders_project worker -Q orders --pool=prefork --concurrency=1`), "
            "one process_pending_orders task enqueued per worker; orders/s from the enqueue "
            "to the last status event; by worker: from each worker's log. Exactly once: no "
            "order left pending or failed, one status_changed event, one outbox "
            "order.status_changed event and one confirmation e-mail per order, the workers' "
            "counts adding up, no ERROR line.",
            "",
            markdown_table(res["processing"]),
            "",
        ]
    if res.get("notes"):
        lines += ["## Notes", "", *[f"- {n}" for n in res["notes"]], ""]
    return "\n".join(lines)


def main() -> int:
    args = parse_args()
    wall_start = time.monotonic()
    secret = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(50))
    tmp = Path(tempfile.mkdtemp(prefix="orders-bench-scale-"))
    db = web_db_name(args.orders)
    res: dict = {"db": db, "notes": []}
    failed = False
    made_proc = False
    try:
        bench.ensure_services()
        m = bench.machine()
        res["machine"] = {**m, "nproc": os.cpu_count()}
        log(f"machine: {res['machine']}; temporary files in {tmp}")
        log(CAVEAT.format(cpus=os.cpu_count()))
        if "web" in args.only:
            bench.SEEDS[db] = args.orders
            bench.REDIS_DBS[db] = WEB_REDIS_DB
            res["orders"] = bench.ensure_seeded(db)
            log(f"replica: bin/pg-replica start (port {REPLICA_PORT}, {REPLICA_DIR})")
            res["notes"].append(f"bin/pg-replica start took {replica_start():.1f} s.")
            took = replica_catch_up("the seed")
            count = int(bench.psql(db, "SELECT count(*) FROM orders_order", port=REPLICA_PORT))
            if count != res["orders"]:
                raise BenchError(f"the replica has {count} orders, the primary {res['orders']}")
            data, info = bench.prepare(db, secret, tmp)  # flushes Redis database 6
            res["sample"] = info["order_ids"]
            took += replica_catch_up("the bench users and tokens")
            res["notes"].append(
                f"Replica caught up with the seed and the bench users in {took:.1f} s; "
                f"{count:,} orders on both."
            )
            setups, res["web_info"] = web(args, db, secret, tmp, data)
            res["web"] = web_tables(setups)
            res["notes"] += round_notes(setups)
        if "processing" in args.only:
            made_proc = True
            res["processing"] = processing_table(runs := processing(args, secret, tmp))
            for r in runs:
                for anomaly in r["anomalies"]:
                    res["notes"].append(f"{r['workers']} worker(s): {anomaly}")
                if r["warnings"]:
                    res["notes"].append(
                        f"{r['workers']} worker(s): {r['warnings']} WARNING log lines"
                    )
            if len(runs) == 2:
                res["notes"].append(
                    f"Processing: first status event {runs[0]['pickup_s']:.2f} s / "
                    f"{runs[1]['pickup_s']:.2f} s after the enqueue; machine busy "
                    f"{runs[0]['busy']:.0%} / {runs[1]['busy']:.0%} (1 / 2 workers), of "
                    f"which work of neither the workers nor their PostgreSQL backends "
                    f"{runs[0]['other']:.0%} / {runs[1]['other']:.0%}."
                )
    except KeyboardInterrupt:
        log("interrupted")
        failed = True
    except (BenchError, subprocess.TimeoutExpired) as error:
        log(f"failed: {error}")
        failed = True
    except Exception:  # still clean up and report what was measured
        traceback.print_exc()
        failed = True
    finally:
        with contextlib.suppress(BenchError):
            redis_flush(WEB_REDIS_DB)
            redis_flush(PROC_REDIS_DB)
            if made_proc:
                for name in (PROC_DB, PROC_TEMPLATE):
                    bench.run(["dropdb", *bench.PG, "--if-exists", "--force", name], quiet=True)
            if args.drop_web_db:
                bench.run(["dropdb", *bench.PG, "--if-exists", "--force", db], quiet=True)
        if "web" in args.only:
            res["notes"].append(
                "The replica is left running (the test suite reuses it); bin/pg-replica stop "
                "stops it."
            )
    res["wall"] = time.monotonic() - wall_start
    if "machine" in res and ("web" in res or "processing" in res):
        text = report(res, args, failed)
        print("\n" + CAVEAT.format(cpus=res["machine"]["nproc"]) + "\n")
        if "web" in res:
            print(text_table(res["web"][0]) + "\n\n" + text_table(res["web"][1]) + "\n")
        if "processing" in res:
            print(text_table(res["processing"]) + "\n")
        for note in res["notes"]:
            print(f"- {note}")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        shown = args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out
        print(f"\nWall time {res['wall']:.0f} s. Written to {shown}")
    if args.keep or failed:
        print(f"Logs and data kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
