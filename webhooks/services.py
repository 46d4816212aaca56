"""Webhook rules: subscriptions, turning outbox events into deliveries, and
sending them (SPEC §9). The API, the admin and the tasks call these.

Sending is at least once. A delivery is claimed (a lease, taken with
`SELECT ... FOR UPDATE SKIP LOCKED`, so two workers never send it at once),
sent outside any transaction, and its outcome recorded. A worker that dies
mid-send leaves the delivery pending; its lease runs out and it is sent
again, with the same `webhook-id`. Retry times live in the database
(`next_attempt_at`), never in a Celery countdown.
"""

import json
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import timedelta

import httpx
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from accounts.models import User
from core.db import delete_in_batches
from core.events import announce_after_commit, event, events_publish, events_record
from core.models import Event

from . import metrics, signing, targets
from .models import ALL_EVENTS, Attempt, Delivery, Subscription

logger = logging.getLogger(__name__)

EVENT_TYPES = [value for value in Event.Type.values if value != Event.Type.WEBHOOK_PING]
# After a rotation the old secret keeps signing this long.
ROTATION_OVERLAP = timedelta(hours=24)
# A claimed delivery is held this long past the send's timeout.
LEASE_GRACE = timedelta(seconds=30)
RESPONSE_KEPT = 500  # characters of a response body kept in the log
USER_AGENT = "Orders-Webhooks/1.0"


class InvalidSubscription(ValueError):
    """A subscription that cannot be saved; `field` names what is wrong."""

    def __init__(self, detail: str, *, field: str):
        super().__init__(detail)
        self.detail, self.field = detail, field


# --- Subscriptions ----------------------------------------------------------------


def check_events(events) -> list[str]:
    """The event types a subscription asks for, checked: known types, or ["*"]."""
    if not isinstance(events, list) or not events:
        raise InvalidSubscription('List event types, or ["*"] for all.', field="events")
    if ALL_EVENTS in events:
        if len(events) > 1:
            raise InvalidSubscription('"*" stands alone: it means every type.', field="events")
        return [ALL_EVENTS]
    unknown = sorted({str(name) for name in events} - set(EVENT_TYPES))
    if unknown:
        raise InvalidSubscription(
            f"Unknown event types: {', '.join(unknown)}. Known: {', '.join(EVENT_TYPES)}.",
            field="events",
        )
    return sorted(set(events))


def check_target(url: str) -> None:
    try:
        targets.check_url(url)
    except targets.TargetRefused as refused:
        raise InvalidSubscription(str(refused), field="url") from None


def subscription_create(
    *, url: str, events, description: str = "", is_active: bool = True, created_by=None
) -> tuple[Subscription, str]:
    """A new subscription and its secret, which is shown once."""
    check_target(url)
    subscription = Subscription.objects.create(
        url=url,
        events=check_events(events),
        description=description,
        is_active=is_active,
        secret=signing.new_secret(),
        created_by=created_by,
    )
    return subscription, subscription.secret


def subscription_update(*, subscription: Subscription, data: dict) -> Subscription:
    """Change the URL, events, description or whether it is active. Turning
    it on again clears why it was turned off and the failure streak."""
    if "url" in data:
        check_target(data["url"])
    if "events" in data:
        data = {**data, "events": check_events(data["events"])}
    for name in ("url", "events", "description", "is_active"):
        if name in data:
            setattr(subscription, name, data[name])
    if data.get("is_active"):
        subscription.disabled_reason, subscription.failing_since = "", None
    subscription.save()
    return subscription


def subscription_delete(*, subscription: Subscription) -> None:
    """Delete a subscription with its delivery log (deliveries and tries).

    Its deliveries are locked first, as a worker recording a try locks its
    delivery (`_record`): a try being recorded is committed before the log
    is read for deletion (and goes with it), or finds its delivery gone and
    is not recorded. Without the locks a try committed meanwhile would make
    the delete fail on its foreign key."""
    with transaction.atomic():
        locked = Delivery.objects.select_for_update().filter(subscription_id=subscription.pk)
        list(locked.order_by("pk").values_list("pk", flat=True))
        subscription.delete()


def subscription_rotate_secret(*, subscription: Subscription) -> str:
    """A new secret, shown once; the old one keeps signing for 24 hours, so
    receivers can switch without losing a delivery."""
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().get(pk=subscription.pk)
        subscription.previous_secret = subscription.secret
        subscription.previous_secret_expires_at = timezone.now() + ROTATION_OVERLAP
        subscription.secret = signing.new_secret()
        subscription.save()
    return subscription.secret


def subscription_ping(*, subscription: Subscription) -> Event:
    """Queue a `webhook.ping` for this subscription alone."""
    with transaction.atomic():
        (ping,) = events_record(
            [
                event(
                    Event.Type.WEBHOOK_PING,
                    aggregate="webhook",
                    aggregate_id=subscription.pk,
                    data={"subscription": {"id": subscription.pk, "url": subscription.url}},
                )
            ]
        )
    return ping


def delivery_redeliver(*, delivery: Delivery) -> Delivery:
    """Send the delivery's event again, as a new delivery with the same
    `webhook-id` (the event's id); a worker is told after commit."""
    redelivery = Delivery.objects.create(
        subscription=delivery.subscription,
        event=delivery.event,
        redelivery_of=delivery,
        aggregate=delivery.aggregate,
        aggregate_id=delivery.aggregate_id,
    )
    announce_after_commit()
    return redelivery


# --- From events to deliveries --------------------------------------------------------


def deliveries_from_events(events: list[Event]) -> None:
    """The webhooks' part of publishing events (`core.events.events_publish`):
    one delivery per subscription that wants each event, made once even if
    two workers publish the same event (the unique constraint)."""
    # Active subscriptions, and any a ping in this batch is for: a ping to
    # a subscription that is off waits, pending, until it is on again.
    pinged = [e.aggregate_id for e in events if e.type == Event.Type.WEBHOOK_PING]
    subscriptions = list(Subscription.objects.filter(Q(is_active=True) | Q(pk__in=pinged)))
    Delivery.objects.bulk_create(
        [
            Delivery(
                subscription=subscription,
                event=outbox_event,
                aggregate=outbox_event.aggregate,
                aggregate_id=outbox_event.aggregate_id,
                created_at=outbox_event.created_at,
            )
            for outbox_event in events
            for subscription in subscriptions
            if subscription.wants(outbox_event)
        ],
        ignore_conflicts=True,
    )


def events_fan_out(*, limit: int = 500) -> int:
    """Publish new events (every consumer's, the webhooks' included)."""
    return events_publish(limit=limit)


# --- Sending ------------------------------------------------------------------------


def retry_schedule() -> list[int]:
    return [int(seconds) for seconds in settings.WEBHOOK_RETRY_SCHEDULE]


def due_deliveries():
    """Pending deliveries whose time has come, of active subscriptions, not
    held by a worker, and with no earlier delivery of the same subscription
    and aggregate still pending: one order's events arrive in order."""
    now = timezone.now()
    earlier_pending = Delivery.objects.filter(
        subscription=OuterRef("subscription"),
        aggregate=OuterRef("aggregate"),
        aggregate_id=OuterRef("aggregate_id"),
        status=Delivery.Status.PENDING,
        event_id__lt=OuterRef("event_id"),
    )
    return Delivery.objects.filter(
        Q(leased_until__isnull=True) | Q(leased_until__lt=now),
        status=Delivery.Status.PENDING,
        next_attempt_at__lte=now,
        subscription__is_active=True,
    ).filter(~Exists(earlier_pending))


def deliveries_claim(*, limit: int) -> list[Delivery]:
    """Take up to `limit` due deliveries for this worker (a lease)."""
    lease = timedelta(seconds=settings.WEBHOOK_TIMEOUT) + LEASE_GRACE
    with transaction.atomic():
        claimed = list(
            due_deliveries()
            .select_for_update(skip_locked=True, of=("self",))
            .order_by("event_id", "id")[:limit]
        )
        if claimed:
            Delivery.objects.filter(pk__in=[d.pk for d in claimed]).update(
                leased_until=timezone.now() + lease
            )
    return claimed


def message_body(outbox_event: Event) -> bytes:
    """The delivery's body, the same bytes on every try."""
    payload = {
        "id": outbox_event.webhook_id,
        "type": outbox_event.type,
        "timestamp": outbox_event.created_at.isoformat().replace("+00:00", "Z"),
        "data": outbox_event.data,
    }
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


@dataclass
class Outcome:
    status_code: int | None = None
    error: str = ""
    body: str = ""
    retry_after: int | None = None
    duration_ms: int = 0

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _post(client: httpx.Client, subscription: Subscription, outbox_event: Event) -> Outcome:
    """One POST of the event, to the address checked just now."""
    started = time.monotonic()
    outcome = Outcome()
    try:
        target = targets.check_url(subscription.url)
        body = message_body(outbox_event)
        timestamp = int(time.time())
        host = f"[{target.address}]" if ":" in target.address else target.address
        response = client.post(
            f"{target.scheme}://{host}:{target.port}{target.path}",
            content=body,
            headers={
                "Host": target.host if target.port in (80, 443) else f"{target.host}:{target.port}",
                "Content-Type": "application/json",
                "User-Agent": USER_AGENT,
                "webhook-id": outbox_event.webhook_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": signing.signature_header(
                    secrets_=subscription.signing_secrets(),
                    msg_id=outbox_event.webhook_id,
                    timestamp=timestamp,
                    body=body,
                ),
            },
            extensions={"sni_hostname": target.host},
        )
    except targets.TargetRefused as refused:
        outcome.error = f"Refused target: {refused}"
    except httpx.TimeoutException:
        outcome.error = f"No answer within {settings.WEBHOOK_TIMEOUT} s"
    except httpx.HTTPError as error:
        outcome.error = f"{type(error).__name__}: {error}"[:300]
    else:
        outcome.status_code = response.status_code
        outcome.body = response.text[:RESPONSE_KEPT]
        retry_after = response.headers.get("Retry-After", "")
        if retry_after.isdigit():
            outcome.retry_after = int(retry_after)
    outcome.duration_ms = int((time.monotonic() - started) * 1000)
    return outcome


def _next_try(delivery: Delivery, outcome: Outcome):
    """When to try again after this failure, or None when the schedule is spent."""
    schedule = retry_schedule()
    if delivery.attempts > len(schedule):
        return None
    wait = schedule[delivery.attempts - 1] * random.uniform(0.9, 1.1)  # noqa: S311 (jitter)
    if outcome.retry_after:
        wait = max(wait, min(outcome.retry_after, schedule[-1]))
    return timezone.now() + timedelta(seconds=wait)


def _disable(subscription: Subscription, reason: str) -> None:
    Subscription.objects.filter(pk=subscription.pk).update(
        is_active=False, disabled_reason=reason[:300], updated_at=timezone.now()
    )
    logger.warning("Webhook subscription %s disabled: %s", subscription.pk, reason)


def _mail_staff_disabled(subscription: Subscription, reason: str) -> None:
    recipients = list(
        User.objects.filter(is_active=True, is_staff=True)
        .filter(Q(is_superuser=True) | Q(user_permissions__codename="change_subscription"))
        .filter(email__isnull=False)
        .exclude(email="")
        .values_list("email", flat=True)
        .distinct()
    )
    if not recipients:
        return
    try:
        send_mail(
            subject=f"Webhook subscription #{subscription.pk} was disabled",
            message=(
                f"Deliveries to {subscription.url} have failed since "
                f"{subscription.failing_since:%Y-%m-%d %H:%M} UTC, so the subscription was "
                f"turned off: {reason}\n\nFix the receiver, then turn the subscription on "
                "again in the admin (Webhooks > Subscriptions); the deliveries still pending "
                "are sent then."
            ),
            from_email=None,
            recipient_list=recipients,
        )
    except Exception:  # the subscription is off either way; the log says so
        logger.exception("Could not mail staff that subscription %s was disabled", subscription.pk)


def _record(delivery: Delivery, outcome: Outcome, started_at) -> None:
    """Store one try and what follows from it, in one short transaction."""
    subscription = delivery.subscription
    now = timezone.now()
    delivery.attempts += 1
    delivery.last_status_code = outcome.status_code
    delivery.last_error = outcome.error
    delivery.leased_until = None
    if outcome.succeeded:
        delivery.status, delivery.delivered_at = Delivery.Status.SUCCEEDED, now
    elif outcome.status_code == 410:
        delivery.status = Delivery.Status.FAILED
    else:
        next_try = _next_try(delivery, outcome)
        if next_try is None:
            delivery.status = Delivery.Status.FAILED
        else:
            delivery.next_attempt_at = next_try
    with transaction.atomic():
        # Locked first, as subscription_delete locks the deliveries it deletes.
        if not Delivery.objects.select_for_update().filter(pk=delivery.pk).values("pk"):
            logger.info("Delivery %s was deleted with its subscription while sent", delivery.pk)
            return
        metrics.count_attempt(
            succeeded=outcome.succeeded, gave_up=delivery.status == Delivery.Status.FAILED
        )
        Attempt.objects.create(
            delivery=delivery,
            started_at=started_at,
            duration_ms=outcome.duration_ms,
            status_code=outcome.status_code,
            error=outcome.error,
            response_body=outcome.body,
        )
        delivery.save(
            update_fields=[
                "attempts",
                "last_status_code",
                "last_error",
                "leased_until",
                "status",
                "delivered_at",
                "next_attempt_at",
            ]
        )
        if outcome.succeeded:
            Subscription.objects.filter(pk=subscription.pk, failing_since__isnull=False).update(
                failing_since=None
            )
            return
        if outcome.status_code == 410:
            _disable(subscription, "The receiver answered 410 Gone.")
            return
        Subscription.objects.filter(pk=subscription.pk, failing_since__isnull=True).update(
            failing_since=now
        )
        subscription.refresh_from_db(fields=["failing_since", "is_active"])
        limit = timedelta(days=settings.WEBHOOK_DISABLE_AFTER_DAYS)
        if subscription.is_active and now - subscription.failing_since >= limit:
            reason = (
                f"Every delivery has failed for {settings.WEBHOOK_DISABLE_AFTER_DAYS} days "
                f"(last: {outcome.status_code or outcome.error})."
            )
            _disable(subscription, reason)
            transaction.on_commit(lambda: _mail_staff_disabled(subscription, reason))


@dataclass
class SendReport:
    sent: int = 0
    succeeded: int = 0
    failed: list[int] = field(default_factory=list)


def http_client() -> httpx.Client:
    """One client per run: keep-alive to each receiver, a timeout, and no
    redirects (a 3xx is a failure, retried)."""
    return httpx.Client(
        timeout=httpx.Timeout(settings.WEBHOOK_TIMEOUT),
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
    )


def deliveries_send(*, limit: int = 100, client: httpx.Client | None = None) -> SendReport:
    """Claim up to `limit` due deliveries and send each once."""
    report = SendReport()
    claimed = deliveries_claim(limit=limit)
    if not claimed:
        return report
    own_client = client is None
    client = client or http_client()
    try:
        for delivery in (
            Delivery.objects.filter(pk__in=[d.pk for d in claimed])
            .select_related("subscription", "event")
            .order_by("event_id", "id")
        ):
            started_at = timezone.now()
            outcome = _post(client, delivery.subscription, delivery.event)
            _record(delivery, outcome, started_at)
            report.sent += 1
            if outcome.succeeded:
                report.succeeded += 1
            else:
                report.failed.append(delivery.pk)
    finally:
        if own_client:
            client.close()
    return report


def webhooks_run(*, time_budget: float = 50.0, batch: int = 100) -> dict:
    """Fan out new events, then send what is due, until nothing is left or
    `time_budget` seconds have gone (the next run goes on)."""
    deadline = time.monotonic() + time_budget
    fanned = 0
    while (done := events_fan_out()) and time.monotonic() < deadline:
        fanned += done
    sent = succeeded = 0
    with http_client() as client:
        while time.monotonic() < deadline:
            report = deliveries_send(limit=batch, client=client)
            sent, succeeded = sent + report.sent, succeeded + report.succeeded
            if report.sent < batch:
                break
    return {"events": fanned, "sent": sent, "succeeded": succeeded}


def deliveries_delete_old() -> int:
    """Housekeeping: deliveries (with their tries) older than
    WEBHOOK_RETENTION_DAYS, in batches; then the published events that old."""
    cutoff = timezone.now() - timedelta(days=settings.WEBHOOK_RETENTION_DAYS)
    deleted = delete_in_batches(Delivery.objects.filter(created_at__lt=cutoff))
    delete_in_batches(Event.objects.filter(created_at__lt=cutoff, published_at__isnull=False))
    return deleted
