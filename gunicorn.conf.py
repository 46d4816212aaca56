"""gunicorn settings; each can be overridden with GUNICORN_* variables.

Sync workers, one per CPU core, no threads: the figures in
docs/performance.md were taken with this. On 2 cores, 2 workers beat 3 or 4
(more processes only add CPU per request: 7.7 -> 9.4 ms for a create) and
threads lost outright (2 x 4: create -20 %, detail -50 %): the app is CPU-bound
and its database round trips are short.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", os.cpu_count() or 2))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# The workers' heartbeat files on tmpfs (gunicorn's own advice for
# containers): a slow disk cannot stall them. gunicorn creates them itself.
SHM = "/dev/shm"  # noqa: S108
worker_tmp_dir = SHM if os.path.isdir(SHM) else None
# No gunicorn access log: Django writes one line per request, with its request id.
accesslog = None
