"""Flame graphs of a loaded gunicorn worker, by py-spy (docs/performance.md).

One gunicorn worker with production settings serves wrk's create and detail
loads (bench/lua/), and py-spy samples it for --seconds under each; the SVGs
go to --out (docs/flame-<label>-create.svg, -detail.svg). --tree profiles
another checkout of the project (say a `git worktree` of an older commit)
with this venv, for a before/after pair:

    git worktree add /tmp/before <commit>
    .venv/bin/python bench/flame.py --tree /tmp/before --label before
    .venv/bin/python bench/flame.py --label after

Needs py-spy (`.venv/bin/pip install py-spy`), wrk, PostgreSQL and Redis;
the database is orders_bench_10k, seeded by bench/run.py the first time.
"""

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench  # bench/run.py: the harness's helpers

REDIS_DB = 3  # bench/run.py uses 1 and 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, default=bench.ROOT, help="checkout to profile")
    parser.add_argument("--label", default="after")
    parser.add_argument("--out", type=Path, default=bench.ROOT / "docs")
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--port", type=int, default=8767)
    parser.add_argument(
        "--format", default="flamegraph", choices=("flamegraph", "raw", "speedscope")
    )
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(bench.ROOT / ".venv" / "bin" / "py-spy")
    if not Path(py_spy).exists():
        raise SystemExit("py-spy is missing: .venv/bin/pip install py-spy")
    bench.ensure_services()
    bench.ensure_seeded(bench.DB_10K)
    # A Redis database of its own, emptied: nothing cached by another run.
    bench.run(["redis-cli", "-h", "127.0.0.1", "-n", str(REDIS_DB), "FLUSHDB"], quiet=True)
    secret = secrets.token_urlsafe(48)
    tmp = Path(tempfile.mkdtemp(prefix="orders-flame-"))
    data, _ = bench.prepare(bench.DB_10K, secret, tmp)
    env = bench.base_env(
        DEBUG="0",
        SECRET_KEY=secret,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="0",
        DATABASE_URL=bench.PG_URL.format(bench.DB_10K),
        REDIS_URL=bench.REDIS_URL.removesuffix("/0") + f"/{REDIS_DB}",
        GUNICORN_BIND=f"127.0.0.1:{args.port}",
        GUNICORN_WORKERS="1",
        GUNICORN_THREADS="1",
        JWT_ACCESS_MINUTES="240",
        MAX_OPEN_ORDERS_PER_CUSTOMER="100000000",
    )
    log_path = tmp / "gunicorn.log"
    with log_path.open("wb") as log_file:
        server = subprocess.Popen(  # noqa: S603 (the venv's gunicorn)
            [bench.GUNICORN, "orders_project.wsgi:application", "--config", "gunicorn.conf.py"],
            cwd=args.tree,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        target = bench.Server(f"http://127.0.0.1:{args.port}", bench.DB_10K, log_path, 1, 1, server)
        bench.wait_healthy(target)
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text()
        worker = int(children.split()[0])  # the one worker
        for scenario in ("create", "detail"):
            suffix = {"flamegraph": "svg", "raw": "txt", "speedscope": "json"}[args.format]
            out = args.out / f"flame-{args.label}-{scenario}.{suffix}"
            bench.log(f"{scenario}: loading worker {worker} from {args.tree}, sampling to {out}")
            wrk = subprocess.Popen(  # noqa: S603
                [  # noqa: S607 (wrk from PATH, as bench/run.py runs it)
                    "wrk",
                    "-t1",
                    "-c4",
                    f"-d{args.seconds + 4}s",
                    "-s",
                    bench.BENCH / "lua" / f"{scenario}.lua",
                    target.url,
                    "--",
                    secrets.token_hex(4),
                ],
                env=bench.base_env(BENCH_DATA=str(data), BENCH_LUA_DIR=str(bench.BENCH / "lua")),
                stdout=subprocess.DEVNULL,
            )
            time.sleep(2)
            subprocess.run(  # noqa: S603
                [
                    py_spy,
                    "record",
                    "--pid",
                    str(worker),
                    "--duration",
                    str(args.seconds),
                    "--rate",
                    "250",
                    "--format",
                    args.format,
                    "--output",
                    str(out),
                    "--nonblocking",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            wrk.wait()
    finally:
        bench.stop(server)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.chdir(bench.ROOT)
    sys.exit(main())
