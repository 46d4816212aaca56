"""Soak test of the whole Orders stack under mixed load (`make soak`), run by
hand: not a CI job, not a pytest test.

For --minutes (default 10) it drives gunicorn (production settings), a Celery
worker and Celery beat (order processing every 10 s) on PostgreSQL and Redis
with many concurrent clients doing what shops, customers and staff do, mixed
(bench/lua/soak.lua, under wrk): place orders with an Idempotency-Key (and
replay recent keys, and reuse one with another body), list and read their
orders, read another's (404), cancel theirs, read the catalogue and who they
are; staff list the orders in processing, ship them, deliver them, restock
and write off stock. Stock is kept short on purpose, so 409
insufficient_stock is an everyday answer.

It passes with zero 5xx and the invariants intact. Checked at the end against
the database, with every process stopped:

- per product: reserved == the units on its pending and processing orders,
  0 <= reserved <= on hand, and the ledger adds up to (on hand, reserved);
- every order has exactly one `created` event, and its latest status event
  names the status it has;
- every order placed during the soak that is now processing, shipped or
  delivered has a confirmation e-mail in the outbox.

Also failures: a socket error or timeout, a status the scenario does not
allow (a 409 or 422 with the wrong error code too), a replay that answers
another order or makes a second one, an ERROR line in any process's log, a
process that dies, and the API's answers not matching the database (201s vs
orders placed, 200s vs status events). Expected non-2xx answers (409
insufficient_stock / invalid_transition, 404 for another's order, 422 for a
reused key) are counted and shown, not failed.

The database `orders_soak` is dropped and made again each run (migrated,
seed_demo --orders 2000 --seed 1, demo products restocked, 40 customers and a
staff member with access tokens); Redis database 5 is flushed for Celery and
the cache. Nothing else is touched. Logs go to a temporary folder, kept when
the run fails or with --keep. The report is printed and written to
bench/results/soak.md.

    make soak                              # 10 minutes, ~11 in all
    make soak SOAK_ARGS="--minutes 1"      # a smoke run
    .venv/bin/python bench/soak.py --help

Ctrl-C once stops the load early and still checks and reports; twice stops
everything at once. Do not run other heavy work beside it: on 2 cores the
numbers and the timeouts move with it.
"""

import argparse
import contextlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import string
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# bench/run.py: process helpers, PostgreSQL and Redis, gunicorn's health check.
import run as bench

ROOT, BENCH, PYTHON = bench.ROOT, bench.BENCH, bench.PYTHON
CELERY = ROOT / ".venv" / "bin" / "celery"
DB = "orders_soak"
SEED_ORDERS = 2000
PROCESSING_INTERVAL = 10  # seconds; the schedule is made by migrate, from the environment
PROGRESS_EVERY = 30  # seconds

# The 409/404/422 answers the scenarios expect; anything else non-2xx fails.
EXPECTED = {
    "create": "201; 409 insufficient_stock",
    "replay": "201 (replayed, same order); 409 insufficient_stock if the first was refused",
    "key_reuse": "422 idempotency_key_reused",
    "list_own": "200",
    "detail_own": "200",
    "detail_other": "404 not_found",
    "cancel": "200; 409 invalid_transition once processed",
    "staff_list": "200",
    "ship": "200; 409 invalid_transition",
    "deliver": "200; 409 invalid_transition",
    "products": "200",
    "products_anon": "200",
    "me": "200",
    "restock": "201",
    "damage": "201; 409 insufficient_stock",
}
SCENARIO_LABELS = {
    "create": "place an order (POST /orders/, new Idempotency-Key)",
    "replay": "replay a recent key, same body",
    "key_reuse": "reuse a key with another body",
    "list_own": "list own orders",
    "detail_own": "read an own order",
    "detail_other": "read another's order",
    "cancel": "cancel an own order (POST cancel / DELETE)",
    "staff_list": "staff: list orders in processing",
    "ship": "staff: PATCH processing -> shipped",
    "deliver": "staff: PATCH shipped -> delivered",
    "products": "product list (customer)",
    "products_anon": "product list (anonymous)",
    "me": "GET /auth/me/",
    "restock": "staff: stock adjustment, restock",
    "damage": "staff: stock adjustment, damage",
}

log = bench.log
SoakError = bench.BenchError


# --- processes ----------------------------------------------------------------------

# The app's format (settings.LOGGING), and gunicorn's own (worker timeouts, ...).
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+ (?P<level>[A-Z]+) \[[^\]]*\] (?P<name>\S+): ")
GUNICORN_LINE = re.compile(r"^\[[^\]]+\] \[\d+\] \[(?P<level>[A-Z]+)\] ")


@dataclass
class Proc:
    """A process of the stack, its log, and what the log said so far."""

    name: str
    process: subprocess.Popen
    log: Path
    offset: int = 0
    problems: list = field(default_factory=list)  # ERROR/CRITICAL lines and tracebacks
    warnings: dict = field(default_factory=dict)  # logger -> WARNING lines

    def scan(self) -> None:
        """Read what was logged since the last scan."""
        with self.log.open("rb") as f:
            f.seek(self.offset)
            chunk = f.read()
        # Only whole lines: the rest is read next time.
        chunk = chunk[: chunk.rfind(b"\n") + 1]
        self.offset += len(chunk)
        for line in chunk.decode(errors="replace").splitlines():
            match = LOG_LINE.match(line) or GUNICORN_LINE.match(line)
            level = match["level"] if match else ""
            if level in ("ERROR", "CRITICAL") or line.startswith("Traceback"):
                self.problems.append(line)
            elif level == "WARNING":
                name = match.groupdict().get("name") or "gunicorn"
                self.warnings[name] = self.warnings.get(name, 0) + 1

    def rss_mb(self) -> float:
        """Resident memory of the process and its children (its own session)."""
        pages = 0
        for pid in bench.group_pids(self.process.pid):
            with contextlib.suppress(OSError, IndexError):
                pages += int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def start(name: str, cmd: list, env: dict, tmp: Path) -> Proc:
    log_path = tmp / f"{name}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(  # noqa: S603 (the venv's own programs)
            [str(c) for c in cmd],
            cwd=ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            # Its own session: a Ctrl-C reaches only this script, which then
            # stops the stack in order, and its pids can be found as a group.
            start_new_session=True,
        )
    log(f"{name} started (pid {process.pid}), log {log_path}")
    return Proc(name, process, log_path)


def wait_for_line(proc: Proc, needle: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.process.poll() is not None:
            tail = proc.log.read_text(errors="replace")[-3000:]
            raise SoakError(f"{proc.name} exited ({proc.process.returncode}):\n{tail}")
        if needle in proc.log.read_text(errors="replace"):
            return
        time.sleep(0.3)
    raise SoakError(f"{proc.name} did not log {needle!r} within {timeout:.0f} s")


def stop(proc: Proc) -> None:
    """SIGTERM (gunicorn: graceful; Celery: warm shutdown, the task at hand
    finishes), SIGKILL to the group after 40 s."""
    if proc.process.poll() is None:
        bench.stop(proc.process)
        log(f"{proc.name} stopped ({proc.process.returncode})")


# --- set-up -------------------------------------------------------------------------


def ensure_services(redis_db: int) -> None:
    if bench.run(["pg_isready", *bench.PG[:2], "-q"], check=False).returncode != 0:
        log("PostgreSQL does not answer: starting it")
        version = sorted(os.listdir("/etc/postgresql"))[-1]
        bench.run(shlex.split(bench.PG_START.format(version=version)))
    redis = ["redis-cli", "-h", "127.0.0.1", "-n", str(redis_db)]
    if bench.run([*redis, "ping"], check=False, quiet=True).returncode != 0:
        log("Redis does not answer: starting it")
        bench.run(shlex.split(bench.REDIS_START))
    for _ in range(50):
        pg = bench.run(["pg_isready", *bench.PG[:2], "-q"], check=False).returncode == 0
        pong = bench.run([*redis, "ping"], check=False, quiet=True).stdout.strip() == "PONG"
        if pg and pong:
            break
        time.sleep(0.2)
    else:
        raise SoakError("PostgreSQL or Redis still does not answer")
    if not shutil.which("wrk"):
        raise SoakError("wrk is missing (Debian: apt-get install wrk)")
    if (ROOT / ".env").exists():
        log("warning: .env exists in the project; its values apply where the soak sets none")
    # A fresh broker and cache: no task of an earlier run (for rows that no
    # longer exist) and no throttle counts carried over.
    bench.run([*redis, "flushdb"], quiet=True)


def stack_env(args, secret: str) -> dict:
    """One environment for web, worker, beat and the Django jobs, as
    production would give them (the app reads all its configuration from it)."""
    return bench.base_env(
        DEBUG="0",
        SECRET_KEY=secret,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="0",  # plain HTTP on loopback
        DATABASE_URL=bench.PG_URL.format(DB),
        REDIS_URL=f"redis://127.0.0.1:6379/{args.redis_db}",
        # The outbox's e-mails stay in the worker's memory: no mail server.
        EMAIL_URL="memorymail://",
        ORDER_PROCESSING_INTERVAL=str(PROCESSING_INTERVAL),
        # A few customers place many orders: no per-customer cap in a load test.
        MAX_OPEN_ORDERS_PER_CUSTOMER="100000000",
        # Tokens minted before the load must outlive it.
        JWT_ACCESS_MINUTES=str(int(args.minutes) + 60),
        GUNICORN_BIND=f"127.0.0.1:{args.port}",
    )


def job(name: str, env: dict, *args: str) -> dict:
    """A bench/soak_jobs.py job; returns what it printed as BENCH_JSON."""
    result = bench.run(
        [PYTHON, BENCH / "soak_jobs.py", name, *args], env=env, stdout=subprocess.PIPE, text=True
    )
    for line in reversed(result.stdout.splitlines()):
        if line.startswith("BENCH_JSON "):
            return json.loads(line.removeprefix("BENCH_JSON "))
    raise SoakError(f"soak_jobs.py {name} printed no result:\n{result.stdout[-2000:]}")


def prepare(args, env: dict, tmp: Path) -> tuple[Path, dict]:
    log(f"{DB}: recreating, migrating (processing every {PROCESSING_INTERVAL} s)")
    bench.recreate_db(DB)
    bench.run([PYTHON, "manage.py", "migrate", "--noinput"], env=env, quiet=True)
    log(f"{DB}: seed_demo --orders {SEED_ORDERS} --seed 1")
    bench.run(
        [
            *(PYTHON, "manage.py", "seed_demo", "--orders", str(SEED_ORDERS), "--seed", "1"),
            "--i-know-this-is-not-production",  # DEBUG is off here, as in production
        ],
        env=env,
        quiet=True,
    )
    bench.psql(DB, "VACUUM ANALYZE")
    data = tmp / "soak-data.lua"
    info = job(
        "prepare",
        env,
        "--out",
        str(data),
        "--customers",
        str(args.customers),
        "--available",
        str(args.available),
    )
    log(
        f"{DB}: {info['orders']:,} seeded orders; {info['products']} demo products topped up "
        f"to {args.available} available ({info['units_added']:,} units); "
        f"{info['customers']} customers + 1 staff with tokens"
    )
    return data, info


def start_stack(env: dict, args, tmp: Path, procs: list) -> int:
    """gunicorn, the worker and beat, each waited for; returns gunicorn's workers."""
    # What gunicorn will use: gunicorn.conf.py read with the same environment.
    read_conf = (
        "import runpy; c = runpy.run_path('gunicorn.conf.py'); print(c['workers'], c['threads'])"
    )
    conf = bench.run([PYTHON, "-c", read_conf], env=env, quiet=True).stdout.split()
    if not bench.port_free(args.port):
        raise SoakError(f"127.0.0.1:{args.port} is in use: stop what listens there or --port")
    web = start(
        "gunicorn",
        [bench.GUNICORN, "orders_project.wsgi:application", "--config", "gunicorn.conf.py"],
        env,
        tmp,
    )
    procs.append(web)
    server = bench.Server(
        f"http://127.0.0.1:{args.port}", DB, web.log, int(conf[0]), int(conf[1]), web.process
    )
    bench.wait_healthy(server)
    log(f"gunicorn: {conf[0]} sync workers x {conf[1]} threads on {server.url}")
    worker_cmd = [CELERY, "-A", "orders_project", "worker", "--loglevel=INFO"]
    worker_cmd += ["--pool=prefork", "--concurrency=1", "--without-mingle", "--without-gossip"]
    worker = start("worker", worker_cmd, env, tmp)
    procs.append(worker)
    wait_for_line(worker, " ready.")
    beat = start("beat", [CELERY, "-A", "orders_project", "beat", "--loglevel=INFO"], env, tmp)
    procs.append(beat)
    wait_for_line(beat, "beat: Starting")
    return int(conf[0])


# --- the load -----------------------------------------------------------------------


def nest(flat: dict) -> dict:
    """soak.lua's {"scenario|status": n} as {scenario: {status: n}}."""
    counts = {}
    for key, n in flat.items():
        name, status = key.rsplit("|", 1)
        into = counts.setdefault(name, {})
        into[status] = into.get(status, 0) + n
    return counts


def thread_counts(tmp: Path) -> tuple[dict, dict]:
    """What the wrk threads have counted so far: by scenario and status, checks."""
    flat, checks = {}, {}
    for path in tmp.glob("thread-*.json"):
        with contextlib.suppress(OSError, ValueError):
            part = json.loads(path.read_bytes().decode(errors="replace"))
            for key, n in part.get("counts", {}).items():
                flat[key] = flat.get(key, 0) + n
            for name, n in part.get("checks", {}).items():
                checks[name] = checks.get(name, 0) + n
    return nest(flat), checks


def by_status(counts: dict) -> dict:
    total = {}
    for by in counts.values():
        for status, n in by.items():
            total[status] = total.get(status, 0) + n
    return dict(sorted(total.items()))


def db_orders() -> dict:
    rows = bench.psql(DB, "SELECT status, count(*) FROM orders_order GROUP BY 1 ORDER BY 1")
    return {s: int(n) for s, n in (line.split("|") for line in rows.split())}


def progress(started: float, seconds: int, tmp: Path, procs: list, last: dict) -> None:
    counts, checks = thread_counts(tmp)
    statuses = by_status(counts)
    total = sum(statuses.values())
    elapsed = time.monotonic() - started
    recent = (total - last.get("total", 0)) / max(elapsed - last.get("elapsed", 0), 1e-9)
    last.update(total=total, elapsed=elapsed)
    for proc in procs:
        proc.scan()
    errors = sum(len(p.problems) for p in procs)
    fives = sum(n for s, n in statuses.items() if s.startswith("5"))
    log(
        f"{int(elapsed) // 60}:{int(elapsed) % 60:02d} of {seconds // 60}:{seconds % 60:02d}  "
        f"{total:,} requests, {total / max(elapsed, 1e-9):.0f} req/s (last {recent:.0f})  "
        + ", ".join(f"{s}: {n:,}" for s, n in statuses.items())
    )
    orders = db_orders()
    log(
        f"      5xx {fives}, unexpected {checks.get('unexpected', 0)}, wrong code "
        f"{checks.get('wrong_code', 0)}, replay mismatches {checks.get('replay_mismatch', 0)}, "
        f"ERROR log lines {errors} | orders "
        + ", ".join(f"{s} {n:,}" for s, n in orders.items())
        + " | RSS "
        + ", ".join(f"{p.name} {p.rss_mb():.0f} MB" for p in procs)
    )


def drive(args, data: Path, tmp: Path, procs: list) -> tuple[dict, bool]:
    """Run wrk for the whole duration, printing progress; (its result, interrupted)."""
    seconds = max(int(args.minutes * 60), 10)
    cmd = [
        "wrk",
        f"-t{args.wrk_threads}",
        f"-c{args.connections}",
        f"-d{seconds}s",
        "--timeout",
        f"{args.timeout}s",
        "-s",
        BENCH / "lua" / "soak.lua",
        f"http://127.0.0.1:{args.port}",
        "--",
        secrets.token_hex(4),
        str(args.wrk_threads),
        str(args.restock_units),
    ]
    env = bench.base_env(SOAK_DATA=str(data), SOAK_DIR=str(tmp))
    out = tmp / "wrk.out"
    log(
        f"load: wrk -t{args.wrk_threads} -c{args.connections} for {seconds} s "
        f"(progress every {PROGRESS_EVERY} s)"
    )
    with out.open("wb") as out_file:
        wrk = subprocess.Popen(  # noqa: S603
            [str(c) for c in cmd],
            cwd=ROOT,
            env=env,
            stdout=out_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    started, last, interrupted = time.monotonic(), {}, False
    rss_start = {}
    try:
        while wrk.poll() is None:
            try:
                wrk.wait(timeout=PROGRESS_EVERY - (time.monotonic() - started) % PROGRESS_EVERY)
            except subprocess.TimeoutExpired:
                progress(started, seconds, tmp, procs, last)
                # Memory after the first interval (warm), against the end.
                rss_start = rss_start or {p.name: p.rss_mb() for p in procs}
                dead = [p.name for p in procs if p.process.poll() is not None]
                if dead:
                    raise SoakError(f"{', '.join(dead)} exited during the load") from None
    except KeyboardInterrupt:
        log("interrupted: stopping the load (Ctrl-C again to stop everything now)")
        interrupted = True
        wrk.send_signal(signal.SIGINT)  # wrk stops and still prints its totals
        wrk.wait(timeout=30)
    finally:
        if wrk.poll() is None:
            wrk.kill()
            wrk.wait()
    text = out.read_text(errors="replace")
    for line in text.splitlines():
        if line.startswith("SOAK_RESULT "):
            result = json.loads(line.removeprefix("SOAK_RESULT "))
            result["counts"] = nest(result["counts"])
            result["rss_start"] = rss_start
            result["rss_end"] = {p.name: p.rss_mb() for p in procs}
            return result, interrupted
    raise SoakError(f"wrk printed no result (exit {wrk.returncode}):\n{text[-3000:]}")


def drain(seconds: float) -> dict:
    """With the web server stopped, give beat and the worker a few runs to
    process the last pending orders and send the last e-mails."""
    deadline = time.monotonic() + seconds
    while True:
        left = bench.psql(
            DB,
            "SELECT (SELECT count(*) FROM orders_order WHERE status = 'pending'), "
            "(SELECT count(*) FROM orders_orderemail WHERE sent_at IS NULL)",
        ).strip()
        pending, unsent = (int(v) for v in left.split("|"))
        if (pending == 0 and unsent == 0) or time.monotonic() > deadline:
            return {"pending": pending, "unsent": unsent}
        time.sleep(1)


# --- the report ---------------------------------------------------------------------


ACCESS_LINE = re.compile(
    r"\[soak-[0-9a-f]+-(?P<scenario>[a-z.]+)-\d+-\d+\] core\.access: "
    r"\S+ \S+ (?P<status>\d{3}) (?P<ms>[\d.]+)ms$"
)


def access_log(gunicorn_log: Path) -> tuple[dict, dict]:
    """What the server answered, from its access log: counts by scenario and
    status, and (p50, p99) ms that the app took per scenario. Unlike the
    clients' counts it includes the requests in flight when wrk stopped."""
    counts: dict[str, dict[str, int]] = {}
    times: dict[str, list[float]] = {}
    with gunicorn_log.open(errors="replace") as f:
        for line in f:
            if match := ACCESS_LINE.search(line.rstrip()):
                name = match["scenario"].replace(".", "_")
                by = counts.setdefault(name, {})
                by[match["status"]] = by.get(match["status"], 0) + 1
                times.setdefault(name, []).append(float(match["ms"]))
    percentiles = {
        name: (bench.percentile(values, 50), bench.percentile(values, 99))
        for name, values in times.items()
    }
    return counts, percentiles


def traceback_of(gunicorn_log: Path, request_id: str) -> str:
    """The server's log lines for one request, with the traceback under them."""
    lines, taking = [], False
    with gunicorn_log.open(errors="replace") as f:
        for line in f:
            if f"[{request_id}]" in line:
                taking = True
                lines.append(line.rstrip())
            elif taking and not LOG_LINE.match(line) and not GUNICORN_LINE.match(line):
                lines.append(line.rstrip())  # traceback lines carry no id
            else:
                taking = False
    return "\n".join(lines[-60:])


@dataclass
class Verdict:
    failures: list = field(default_factory=list)

    def check(self, ok: bool, failure: str) -> bool:
        if not ok:
            self.failures.append(failure)
        return ok


def yes(ok: bool) -> str:
    return "ok" if ok else "**FAIL**"


def report(args, res: dict, db: dict, procs: list, drained: dict, setup: dict, interrupted: bool):
    """The Markdown report, and whether the run passed."""
    v = Verdict()
    counts, checks = res["counts"], res["checks"]
    statuses = by_status(counts)
    total = res["requests"]
    seconds = res["duration_us"] / 1e6
    lat = res["latency_us"]
    sockets = res["socket_errors"]
    socket_errors = sum(sockets.values())
    fives = sum(n for s, n in statuses.items() if s.startswith("5"))
    v.check(fives == 0, f"{fives} responses 5xx")
    v.check(socket_errors == 0, f"{socket_errors} socket errors/timeouts")
    v.check(checks.get("unexpected", 0) == 0, f"{checks.get('unexpected', 0)} unexpected statuses")
    v.check(checks.get("wrong_code", 0) == 0, f"{checks.get('wrong_code', 0)} wrong error codes")
    v.check(
        checks.get("replay_mismatch", 0) == 0,
        f"{checks.get('replay_mismatch', 0)} Idempotency-Key replays answering another order",
    )
    unknown = checks.get("unknown_id", 0)
    v.check(unknown == 0, f"{unknown} answers without one of our request ids")
    errors = {p.name: p.problems for p in procs}
    n_errors = sum(len(e) for e in errors.values())
    v.check(n_errors == 0, f"{n_errors} ERROR/CRITICAL/traceback log lines")
    for inv in db["invariants"]:
        v.check(inv["ok"], f"invariant broken: {inv['name']}")

    # The API's answers against what the database recorded since the load
    # began. The server's counts (its access log) are exact; the clients miss
    # the answers to the requests in flight when wrk stopped.
    gunicorn_log = next(p.log for p in procs if p.name == "gunicorn")
    served, times = access_log(gunicorn_log)
    unseen = sum(map(sum, (by.values() for by in served.values()))) - sum(statuses.values())

    def moved(frm, to, by):
        return sum(
            m["n"] for m in db["moves"] if m["from"] == frm and m["to"] == to and m["by"] == by
        )

    new_orders = checks.get("new_orders", 0)
    accounting = [
        (
            "201s that made an order (clients; + answers they did not see)",
            f"{new_orders:,} (+ up to {unseen})",
            "orders placed",
            db["soak_orders"],
            new_orders <= db["soak_orders"] <= new_orders + unseen,
        )
    ]
    for name, frm, to, by in (
        ("cancel", "pending", "cancelled", "customer"),
        ("ship", "processing", "shipped", "staff"),
        ("deliver", "shipped", "delivered", "staff"),
    ):
        answered, events = served.get(name, {}).get("200", 0), moved(frm, to, by)
        label = f"{frm} -> {to} by the {by}"
        accounting.append((f"{name} 200s", f"{answered:,}", label, events, answered == events))
    for api, a, dbname, b, ok in accounting:
        v.check(ok, f"API and database disagree: {api} {a} vs {dbname} {b}")

    passed = not v.failures
    stamp = time.strftime("%Y-%m-%d %H:%M %Z")
    m = bench.machine()
    out = [
        f"# Soak test, {stamp}",
        "",
        "Made by `make soak` (bench/soak.py); the target: **zero 5xx and the invariants intact**.",
        "",
        f"**{'PASS' if passed else 'FAIL'}**"
        + (f" (interrupted after {seconds / 60:.1f} min)" if interrupted else "")
        + (": " + "; ".join(v.failures) if v.failures else ": zero 5xx, invariants intact."),
        "",
        f"- Load: {seconds / 60:.1f} min of mixed traffic, wrk -t{args.wrk_threads} "
        f"-c{args.connections} (timeout {args.timeout} s), {args.customers} customers + 1 staff, "
        f"demo products topped up to {args.available} available at the start, restocks of "
        f"{args.restock_units} units on average during the run.",
        f"- Stack: gunicorn ({setup['workers']} sync workers, DEBUG off, production "
        f"settings), Celery worker (prefork, concurrency 1) and beat (order processing every "
        f"{PROCESSING_INTERVAL} s), PostgreSQL {m['postgres']}, Redis; e-mail in memory.",
        f"- Machine: {m['cpus']} CPUs ({m['cpu']}), Python {m['python']}.",
        f"- Database `{DB}`: {setup['orders']:,} seeded orders before the load.",
        "",
        "## Requests",
        "",
        f"- {total:,} requests in {seconds:.0f} s = {total / max(seconds, 1e-9):.0f} req/s; "
        f"latency p50 {lat['p50'] / 1000:.1f} ms, p90 {lat['p90'] / 1000:.1f} ms, "
        f"p99 {lat['p99'] / 1000:.1f} ms, max {lat['max'] / 1000:.1f} ms.",
        f"- 5xx: **{fives}**. Socket errors: "
        + ", ".join(f"{k} {n}" for k, n in sockets.items())
        + f". Unexpected statuses: {checks.get('unexpected', 0)}; wrong error codes: "
        f"{checks.get('wrong_code', 0)}.",
        f"- Answered by the server but not seen by the clients (in flight when the load "
        f"stopped): {unseen}.",
        f"- Orders made (201, not replayed): {checks.get('new_orders', 0):,}; replays answered "
        f"with the first order (Idempotent-Replayed): {checks.get('replays', 0):,}; replays "
        f"answering another order or making a second one: {checks.get('replay_mismatch', 0)}.",
        "",
        "| status | requests | share |",
        "|---|---:|---:|",
        *(f"| {s} | {n:,} | {n / max(total, 1):.1%} |" for s, n in sorted(statuses.items())),
        "",
        "| scenario | requests | answers | expected | app p50 / p99 ms |",
        "|---|---:|---|---|---:|",
    ]
    for name in [*EXPECTED, *sorted(set(counts) - set(EXPECTED))]:
        by = counts.get(name, {})
        p50, p99 = times.get(name, (0.0, 0.0))
        out.append(
            f"| {SCENARIO_LABELS.get(name, name)} | {sum(by.values()):,} | "
            + ", ".join(f"{s}: {n:,}" for s, n in sorted(by.items()))
            + f" | {EXPECTED.get(name, '-')} | {p50:.1f} / {p99:.1f} |"
        )
    out += [
        "",
        "Latency as the clients see it includes queueing: "
        f"{args.connections} connections on {setup['workers']} sync workers; "
        "the app's own time per request is in the last column (its access log).",
    ]
    out += ["", "## Logs", "", "| process | ERROR/CRITICAL/traceback lines | WARNING lines |"]
    out.append("|---|---:|---|")
    for p in procs:
        warn = ", ".join(f"{k} {n:,}" for k, n in sorted(p.warnings.items())) or "0"
        out.append(f"| {p.name} | {len(p.problems)} | {warn} |")
    for p in procs:
        if p.problems:
            out += ["", f"First {p.name} problems:", "", "```", *p.problems[:20], "```"]
    out += [
        "",
        "Memory (RSS of each process group, after the first "
        f"{PROGRESS_EVERY} s -> at the end of the load): "
        + ", ".join(
            f"{name} {res['rss_start'][name]:.0f} -> {mb:.0f} MB"
            if name in res["rss_start"]
            else f"{name} {mb:.0f} MB"
            for name, mb in res["rss_end"].items()
        )
        + ". The worker keeps every e-mail it sends in memory (memorymail://), so it grows "
        "with the orders processed.",
        "",
        "## Database at the end",
        "",
        f"After the load, with the web server stopped, beat and the worker had up to "
        f"{args.drain} s to finish: {drained['pending']} orders left pending, "
        f"{drained['unsent']} e-mails unsent.",
        "",
        "| status | orders | of which placed during the soak |",
        "|---|---:|---:|",
    ]
    for s in sorted(db["orders_by_status"]):
        out.append(
            f"| {s} | {db['orders_by_status'][s]:,} | {db['soak_orders_by_status'].get(s, 0):,} |"
        )
    out.append(f"| all | {db['orders']:,} | {db['soak_orders']:,} |")
    e = db["emails"]
    out += [
        "",
        "Status moves during the soak: "
        + ", ".join(
            f"{mv['from']} -> {mv['to']} by {mv['by']} {mv['n']:,}"
            for mv in sorted(db["moves"], key=lambda mv: -mv["n"])
        )
        + f". Stock movements written: {db['movements']:,}.",
        "",
        f"E-mails (outbox): {e['total']:,} rows, {e['sent']:,} sent, {e['unsent']:,} unsent, "
        f"{e['retried']} sent more than once, {e['with_error']} with an error. "
        f"Seeded orders in processing/shipped/delivered without one (seed_demo writes no "
        f"outbox; not checked): {db['seeded_confirmed_without_email']:,}.",
        "",
        "| product | active | on hand | reserved | available |",
        "|---|---|---:|---:|---:|",
        *(
            f"| {p['sku']} | {'yes' if p['active'] else 'no'} | {p['on_hand']:,} | "
            f"{p['reserved']:,} | {p['available']:,} |"
            for p in db["stock"]
        ),
        "",
        "## Invariants",
        "",
        "| invariant | result | checked |",
        "|---|---|---|",
        *(f"| {i['name']} | {yes(i['ok'])} | {i['detail']} |" for i in db["invariants"]),
        *(
            f"| API vs database: {api} = {dbname} | {yes(ok)} | {a} vs {b:,} |"
            for api, a, dbname, b, ok in accounting
        ),
    ]
    for inv in db["invariants"]:
        if inv["examples"]:
            out += ["", f"{inv['name']}:", "", *(f"- {x}" for x in inv["examples"])]
    samples = res.get("samples", [])
    if samples:
        out += ["", "## Unexpected answers (first of each thread)", ""]
        for s in samples[:20]:
            out += [
                f"- {s['why']}: {s['scenario']} `{s['request']}` -> {s['status']}, "
                f"request id `{s['request_id']}`",
                f"  - sent: `{s['request_body']}`",
                f"  - answer: `{s['response_body']}`",
            ]
            if int(s["status"]) >= 500:
                out += ["", "```", traceback_of(gunicorn_log, s["request_id"]), "```", ""]
    return "\n".join(out) + "\n", passed


# --- main ---------------------------------------------------------------------------


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10, help="load duration (default 10)")
    parser.add_argument(
        "--connections",
        "-c",
        type=int,
        default=40,
        help="concurrent clients (wrk connections, default 40)",
    )
    parser.add_argument("--wrk-threads", "-t", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument(
        "--timeout", type=int, default=10, help="seconds before wrk counts a request timed out"
    )
    parser.add_argument("--customers", type=int, default=40)
    parser.add_argument(
        "--available",
        type=int,
        default=150,
        help="units available per demo product at the start (default 150)",
    )
    parser.add_argument(
        "--restock-units",
        type=int,
        default=30,
        help="mean units of a restock during the load (default 30: a little under demand)",
    )
    parser.add_argument(
        "--drain",
        type=int,
        default=3 * PROCESSING_INTERVAL + 10,
        help="seconds for the worker to finish after the load",
    )
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument(
        "--redis-db", type=int, default=5, help="Redis database to use (flushed; default 5)"
    )
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "soak.md")
    parser.add_argument("--keep", action="store_true", help="keep the logs and wrk data")
    return parser.parse_args()


def terminate(signum, frame):
    raise KeyboardInterrupt  # a `kill` ends the run as Ctrl-C does


def main() -> int:
    args = parse_args()
    # Also when started where SIGINT is ignored (a background job of a script).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, terminate)
    secret = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(50))
    tmp = Path(tempfile.mkdtemp(prefix="orders-soak-"))
    procs: list[Proc] = []
    passed, interrupted = False, False
    try:
        ensure_services(args.redis_db)
        env = stack_env(args, secret)
        log(f"temporary files in {tmp}")
        data, setup = prepare(args, env, tmp)
        setup["workers"] = start_stack(env, args, tmp, procs)
        result, interrupted = drive(args, data, tmp, procs)
        stop(procs[0])  # no more requests; beat and the worker finish the work
        drained = drain(args.drain)
        for proc in reversed(procs[1:]):
            stop(proc)
        for proc in procs:
            proc.scan()
        log("checking the invariants against the database")
        db = job(
            "check",
            env,
            f"--max-order-id={setup['max_order_id']}",
            f"--max-event-id={setup['max_event_id']}",
            f"--max-movement-id={setup['max_movement_id']}",
        )
        text, passed = report(args, result, db, procs, drained, setup, interrupted)
        print("\n" + text)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        shown = args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out
        print(f"Written to {shown}")
    except KeyboardInterrupt:
        log("interrupted")
        interrupted = True
    except (SoakError, subprocess.TimeoutExpired) as error:
        log(f"failed: {error}")
    finally:
        for proc in reversed(procs):
            stop(proc)
    if args.keep or not passed:
        print(f"Logs and data kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    if interrupted:
        return 130
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
