"""Webhooks in the admin back office (SPEC §9): subscriptions made through
the services (the secret shown once), a test event and a new secret from the
subscription's page, and the delivery log, read-only, with redeliveries."""

from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import StaffFactory
from core.models import Event
from core.testing import messages_of
from webhooks import services, targets
from webhooks.models import Attempt, Delivery, Subscription

pytestmark = pytest.mark.django_db

SUBSCRIPTIONS = reverse("admin:webhooks_subscription_changelist")
SUBSCRIPTION_ADD = reverse("admin:webhooks_subscription_add")
DELIVERIES = reverse("admin:webhooks_delivery_changelist")
DELIVERY_ADD = reverse("admin:webhooks_delivery_add")
VIEW = "webhooks.view_subscription"
CHANGE = "webhooks.change_subscription"


@pytest.fixture(autouse=True)
def resolved_to(monkeypatch):
    """What every host name resolves to (public, unless a test says otherwise)."""
    answer = ["93.184.216.34"]
    monkeypatch.setattr(targets, "resolve", lambda host, port: list(answer))
    return lambda *addresses: answer.__setitem__(slice(None), addresses)


def subscribe(url="https://hooks.example.com/in", events=("order.created",)) -> Subscription:
    subscription, _ = services.subscription_create(url=url, events=list(events))
    return subscription


def delivered(subscription) -> Delivery:
    """One order event, fanned out: a pending delivery to `subscription`."""
    Event.objects.create(
        type="order.created", aggregate="order", aggregate_id=1, sequence=1, data={"order": {}}
    )
    services.events_fan_out()
    return Delivery.objects.select_related("event").get(subscription=subscription)


def change_url(subscription) -> str:
    return reverse("admin:webhooks_subscription_change", args=[subscription.pk])


def ping_url(subscription) -> str:
    return reverse("admin:webhooks_subscription_ping", args=[subscription.pk])


def rotate_url(subscription) -> str:
    return reverse("admin:webhooks_subscription_rotate_secret", args=[subscription.pk])


def staff_client(client, *perms):
    client.force_login(StaffFactory(perms=list(perms)))
    return client


def add_form(**overrides) -> dict:
    data = {
        "url": "https://hooks.example.com/in",
        "events": ["order.created", "order.status_changed"],
        "description": "ERP",
        "is_active": "on",
        "_save": "Save",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


# --- Subscriptions -----------------------------------------------------------------


def test_adding_a_subscription_shows_its_secret_once_and_stores_it(admin_client, superuser):
    response = admin_client.post(SUBSCRIPTION_ADD, add_form())

    assert response.status_code == 302, response.content
    subscription = Subscription.objects.get()
    assert subscription.events == ["order.created", "order.status_changed"]
    assert subscription.created_by == superuser
    assert subscription.secret.startswith("whsec_")
    shown = [text for text in messages_of(response) if subscription.secret in text]
    assert len(shown) == 1
    # The next page shows the message; the one after it, the secret no more.
    assert subscription.secret in admin_client.get(change_url(subscription)).content.decode()
    assert subscription.secret not in admin_client.get(change_url(subscription)).content.decode()


def test_the_add_form_refuses_a_private_address_on_the_url_field(
    admin_client, settings, resolved_to
):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    resolved_to("192.168.1.10")

    response = admin_client.post(SUBSCRIPTION_ADD, add_form())

    assert response.status_code == 200
    assert "private address" in str(response.context["adminform"].form.errors["url"])
    assert not Subscription.objects.exists()


def test_the_add_form_refuses_a_star_with_other_event_types(admin_client):
    response = admin_client.post(SUBSCRIPTION_ADD, add_form(events=["*", "order.created"]))

    assert response.status_code == 200
    assert "events" in response.context["adminform"].form.errors
    assert not Subscription.objects.exists()


def test_the_change_form_saves_through_the_services_and_re_enables(admin_client):
    subscription = subscribe()
    secret = subscription.secret
    Subscription.objects.filter(pk=subscription.pk).update(
        is_active=False, disabled_reason="410 Gone", failing_since=timezone.now()
    )

    response = admin_client.post(
        change_url(subscription), add_form(events=["*"], description="All of it")
    )

    assert response.status_code == 302, response.content
    subscription.refresh_from_db()
    assert (subscription.events, subscription.description) == (["*"], "All of it")
    assert (subscription.is_active, subscription.disabled_reason) == (True, "")
    assert subscription.failing_since is None and subscription.secret == secret


def test_the_subscription_list_and_page_render(admin_client):
    subscription = subscribe()

    listed = admin_client.get(SUBSCRIPTIONS)
    page = admin_client.get(change_url(subscription))

    assert listed.status_code == 200
    assert list(listed.context["cl"].result_list) == [subscription]
    assert page.status_code == 200
    html = page.content.decode()
    assert "Send test event" in html and "Rotate secret" in html
    assert f"{DELIVERIES}?subscription__id__exact={subscription.pk}" in html


def test_the_subscription_list_searches_by_url_and_filters_by_activity(admin_client):
    wanted = subscribe(url="https://erp.example.com/hook")
    other = subscribe(url="https://crm.example.com/hook")
    Subscription.objects.filter(pk=other.pk).update(is_active=False)

    found = admin_client.get(SUBSCRIPTIONS, {"q": "erp"}).context["cl"].result_list
    inactive = admin_client.get(SUBSCRIPTIONS, {"is_active__exact": "0"}).context["cl"]

    assert list(found) == [wanted]
    assert list(inactive.result_list) == [other]


def test_deleting_a_subscription_takes_its_log_with_it(client):
    subscription = subscribe()
    delivered(subscription)
    member = staff_client(client, VIEW, "webhooks.delete_subscription")
    delete = reverse("admin:webhooks_subscription_delete", args=[subscription.pk])

    confirm = member.get(delete)
    response = member.post(delete, {"post": "yes"})

    assert confirm.status_code == 200
    assert not confirm.context["perms_lacking"]
    assert response.status_code == 302
    assert not Subscription.objects.exists() and not Delivery.objects.exists()


# --- The buttons -------------------------------------------------------------------


def test_send_test_event_queues_a_ping_for_the_subscription(admin_client):
    subscription = subscribe()

    response = admin_client.post(ping_url(subscription))

    assert response.status_code == 302
    assert response["Location"] == change_url(subscription)
    ping = Event.objects.get(type=Event.Type.WEBHOOK_PING)
    assert (ping.aggregate, ping.aggregate_id) == ("webhook", subscription.pk)
    assert any(ping.webhook_id in text for text in messages_of(response))


def test_a_test_event_for_a_subscription_that_is_off_waits_until_it_is_on(admin_client):
    subscription = subscribe()
    Subscription.objects.filter(pk=subscription.pk).update(is_active=False)

    response = admin_client.post(ping_url(subscription))

    services.events_fan_out()
    assert Delivery.objects.get().status == "pending"
    assert not services.due_deliveries().exists()  # not sent while it is off
    (message,) = messages_of(response)
    assert "sent once the subscription is on again" in message
    Subscription.objects.filter(pk=subscription.pk).update(is_active=True)
    assert services.due_deliveries().count() == 1


def test_send_test_event_is_a_post(admin_client):
    response = admin_client.get(ping_url(subscription := subscribe()))

    assert response.status_code == 405
    assert not Event.objects.filter(aggregate_id=subscription.pk).exists()


def test_rotate_secret_asks_first_then_shows_the_new_secret_once(admin_client):
    subscription = subscribe()
    old = subscription.secret

    confirm = admin_client.get(rotate_url(subscription))
    subscription.refresh_from_db()
    assert confirm.status_code == 200 and subscription.secret == old

    response = admin_client.post(rotate_url(subscription), {"confirm": "yes"})

    assert response.status_code == 302
    subscription.refresh_from_db()
    assert subscription.secret != old
    assert subscription.signing_secrets() == [subscription.secret, old]
    assert [text for text in messages_of(response) if subscription.secret in text]


def test_without_change_permission_the_buttons_are_hidden_and_refused(client):
    subscription = subscribe()
    secret = subscription.secret
    member = staff_client(client, VIEW)

    page = member.get(change_url(subscription))
    pinged = member.post(ping_url(subscription))
    asked = member.get(rotate_url(subscription))
    rotated = member.post(rotate_url(subscription), {"confirm": "yes"})

    assert page.status_code == 200
    html = page.content.decode()
    assert "Send test event" not in html and "Rotate secret" not in html
    assert f"{DELIVERIES}?subscription__id__exact={subscription.pk}" in html  # reading is
    assert (pinged.status_code, asked.status_code, rotated.status_code) == (403, 403, 403)
    assert "admin/refused.html" in [t.name for t in rotated.templates]
    subscription.refresh_from_db()
    assert subscription.secret == secret
    assert not Event.objects.filter(type=Event.Type.WEBHOOK_PING).exists()


# --- The delivery log --------------------------------------------------------------


def test_the_delivery_log_lists_deliveries_and_filters_by_subscription(admin_client):
    subscription, other = subscribe(), subscribe(url="https://other.example.com/")
    mine = delivered(subscription)

    everything = admin_client.get(DELIVERIES)
    filtered = admin_client.get(DELIVERIES, {"subscription__id__exact": subscription.pk})

    assert everything.status_code == 200
    assert {d.subscription for d in everything.context["cl"].result_list} == {subscription, other}
    assert list(filtered.context["cl"].result_list) == [mine]
    assert mine.event.webhook_id in filtered.content.decode()


def test_a_delivery_page_shows_every_attempt(admin_client):
    delivery = delivered(subscribe())
    started = timezone.now() - timedelta(minutes=1)
    Attempt.objects.create(
        delivery=delivery,
        started_at=started,
        duration_ms=812,
        status_code=503,
        response_body="upstream busy",
    )
    Attempt.objects.create(
        delivery=delivery, started_at=timezone.now(), duration_ms=5000, error="No answer"
    )

    page = admin_client.get(reverse("admin:webhooks_delivery_change", args=[delivery.pk]))

    assert page.status_code == 200
    html = page.content.decode()
    for shown in ("812", "503", "upstream busy", "5000", "No answer", delivery.event.webhook_id):
        assert shown in html


def test_the_redeliver_action_queues_the_same_events_again(admin_client):
    subscription = subscribe()
    delivery = delivered(subscription)

    response = admin_client.post(
        DELIVERIES, {"action": "redeliver", ACTION_CHECKBOX_NAME: [delivery.pk]}
    )

    assert response.status_code == 302
    again = Delivery.objects.get(redelivery_of=delivery)
    assert (again.event_id, again.subscription_id) == (delivery.event_id, subscription.pk)
    assert "Queued 1 redelivery(ies)." in messages_of(response)


def test_the_redeliver_action_needs_the_change_permission(client):
    delivery = delivered(subscribe())
    member = staff_client(client, VIEW)

    listed = member.get(DELIVERIES)
    response = member.post(DELIVERIES, {"action": "redeliver", ACTION_CHECKBOX_NAME: [delivery.pk]})

    assert listed.status_code == 200
    assert listed.context["action_form"] is None or "redeliver" not in dict(
        listed.context["action_form"].fields["action"].choices
    )
    assert response.status_code in (200, 302)
    assert Delivery.objects.count() == 1


def test_deliveries_cannot_be_added_changed_or_deleted(admin_client):
    delivery = delivered(subscribe())
    change = reverse("admin:webhooks_delivery_change", args=[delivery.pk])
    delete = reverse("admin:webhooks_delivery_delete", args=[delivery.pk])

    assert admin_client.get(DELIVERY_ADD).status_code == 403
    assert admin_client.post(change, {"status": "succeeded", "attempts": "9"}).status_code == 403
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    actions = dict(admin_client.get(DELIVERIES).context["action_form"].fields["action"].choices)
    assert "delete_selected" not in actions

    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("pending", 0)
    assert Delivery.objects.count() == 1


def test_staff_without_webhooks_permissions_see_no_log(client):
    delivered(subscribe())

    client.force_login(StaffFactory())  # every permission of the other apps
    response = client.get(DELIVERIES)

    assert response.status_code == 403
