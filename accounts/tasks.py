"""Celery tasks of the accounts app; they only call services (SPEC §7).

The SMS tasks (`sms_*`) run on the `notifications` queue (CELERY_TASK_ROUTES),
so a slow SMS provider never delays order processing or webhooks.
"""

import logging
import queue
import threading
import time
from collections.abc import Sequence

from celery import current_app, shared_task

from . import sms
from .services import otp_delete_expired, tokens_delete_expired

logger = logging.getLogger(__name__)


@shared_task
def housekeeping() -> dict:
    """Drop what has expired: one-time login codes, simplejwt's expired
    outstanding and blacklisted tokens, and the SMS log past its retention.
    Daily, from the schedule in the database; running it twice changes
    nothing more."""
    deleted = {
        "one_time_codes": otp_delete_expired(),
        "expired_tokens": tokens_delete_expired(),
        "sms_messages": sms.sms_delete_old(),
    }
    logger.info("Accounts housekeeping deleted %s", deleted)
    return deleted


# --- SMS ------------------------------------------------------------------------------

# Rows sent per task.
SMS_CHUNK = 100


@shared_task(bind=True, max_retries=sms.MAX_ATTEMPTS)
def sms_send(self, sms_ids: list[int]) -> dict:
    """Send these outbox rows; retry the ones that failed, with backoff."""
    result = sms.sms_send(ids=sms_ids)
    if result.failed and self.request.retries < self.max_retries:
        raise self.retry(args=[result.failed], countdown=result.retry_in.total_seconds())
    return {
        "sent": len(result.sent),
        "failed": len(result.failed),
        "given_up": len(result.given_up),
    }


@shared_task
def sms_sweep() -> dict:
    """Send the texts whose task was lost (a broker that was down, a worker
    that died) or whose retries are due, and give up those whose code has
    expired meanwhile. Every SMS_SWEEP_SECONDS, from the schedule in the
    database; it sends in this task, being on the SMS queue already."""
    totals = {"sent": 0, "failed": 0, "given_up": 0}
    due = sms.sms_due()
    for start in range(0, len(due), SMS_CHUNK):
        result = sms.sms_send(ids=due[start : start + SMS_CHUNK])
        totals["sent"] += len(result.sent)
        totals["failed"] += len(result.failed)
        totals["given_up"] += len(result.given_up)
    if due:
        logger.info("SMS sweep: %s", totals)
    return totals


# Handing rows to a worker happens off the request path: one daemon thread per
# process publishes what requests queued, so a broker that is down or hangs
# never slows a request (the sweep sends what it could not hand over).
_pending: "queue.SimpleQueue[int]" = queue.SimpleQueue()
_thread: list[threading.Thread] = []
_lock = threading.Lock()


def _publish(ids: Sequence[int]) -> None:
    for start in range(0, len(ids), SMS_CHUNK):
        sms_send.apply_async(args=[list(ids[start : start + SMS_CHUNK])], retry=False)


def dispatch_sms(ids: Sequence[int]) -> None:
    """Have a worker send these committed `SmsMessage` rows, soon. Never
    raises and never waits for the broker."""
    if current_app.conf.task_always_eager:
        _publish(ids)  # tests, and `CELERY_TASK_ALWAYS_EAGER` setups: at once, inline
        return
    for pk in ids:
        _pending.put(pk)
    with _lock:
        if not _thread or not _thread[0].is_alive():
            _thread[:] = [threading.Thread(target=_dispatch_loop, name="sms-dispatch", daemon=True)]
            _thread[0].start()


def _dispatch_loop() -> None:
    while True:
        ids = [_pending.get()]
        while True:  # what else is waiting goes in the same message
            try:
                ids.append(_pending.get_nowait())
            except queue.Empty:
                break
        try:
            _publish(ids)
        except Exception:
            logger.warning(
                "Could not hand %d SMS to a worker; the sweep will send them",
                len(ids),
                exc_info=True,
            )
            time.sleep(1)  # do not hammer a broker that is down
