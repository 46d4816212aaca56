"""Telling a worker that events were committed, without making anyone wait.

The outbox calls `kick()` after each transaction that wrote events — on the
request path too. A broker that is down or hangs must not slow that request
(SPEC §7), so the message is sent by a daemon thread, at most every
KICK_INTERVAL: the kicks of many requests fold into one. When nobody
subscribes, nothing is sent at all. A kick that is lost (broker down, process
killed) only delays delivery until the sweep, which beat runs every
WEBHOOK_SWEEP_SECONDS.
"""

import logging
import threading
import time

from celery import current_app
from django.db import connection

from .models import Subscription
from .tasks import deliver_webhooks

logger = logging.getLogger(__name__)

# Whether any subscription is active, asked of the database at most this often.
SUBSCRIBERS_TTL = 5.0
_subscribers = {"any": False, "until": 0.0}
_pending = threading.Event()
_thread: list[threading.Thread] = []
_lock = threading.Lock()


def forget_subscribers() -> None:
    """Ask the database again at the next kick (tests; otherwise a new
    subscription is seen within SUBSCRIBERS_TTL, and the sweep covers that)."""
    _subscribers["until"] = 0.0


def _anyone_subscribes() -> bool:
    now = time.monotonic()
    if now >= _subscribers["until"]:
        _subscribers["any"] = Subscription.objects.filter(is_active=True).exists()
        _subscribers["until"] = now + SUBSCRIBERS_TTL
    return _subscribers["any"]


def _send() -> None:
    deliver_webhooks.apply_async(retry=False)


def kick() -> None:
    """New events were committed: have a worker deliver them, soon. Nothing
    here touches the database or the broker: the request goes on at once."""
    if current_app.conf.task_always_eager:
        # Tests, and `CELERY_TASK_ALWAYS_EAGER` setups: at once, inline.
        if _anyone_subscribes():
            _send()
        return
    _pending.set()
    with _lock:
        if not _thread or not _thread[0].is_alive():
            _thread[:] = [threading.Thread(target=_loop, name="webhook-kick", daemon=True)]
            _thread[0].start()


# Kicks are sent at most this often per process: under load, one message
# covers the events of many requests (the worker sends all that is due).
KICK_INTERVAL = 0.2


def _loop() -> None:
    while True:
        _pending.wait()
        time.sleep(KICK_INTERVAL)
        _pending.clear()
        try:
            if _anyone_subscribes():
                _send()
        except Exception:
            logger.warning("Could not hand new events to a worker; the sweep will", exc_info=True)
            time.sleep(1)  # do not hammer a broker or a database that is down
        finally:
            # This thread asks the database once per SUBSCRIBERS_TTL at most:
            # it keeps no connection open in between.
            connection.close()
