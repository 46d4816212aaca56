"""The webhooks API (SPEC §9): staff subscribe URLs to event types, read the
delivery log, rotate secrets, send test events and redeliveries. Nothing
here sends HTTP: deliveries are made by the fan-out and left pending."""

from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.tests.factories import StaffFactory, UserFactory, permissions
from core.models import Event
from core.testing import assert_error, client_for
from orders_project.tests.test_api_docs import assert_documented
from webhooks import services, targets
from webhooks.models import Delivery, Subscription

pytestmark = pytest.mark.django_db

WEBHOOKS = "/api/v1/webhooks/"
PUBLIC_ADDRESS = "93.184.216.34"
ALL_PERMS = [
    "webhooks.view_subscription",
    "webhooks.add_subscription",
    "webhooks.change_subscription",
    "webhooks.delete_subscription",
]
SUBSCRIPTION_FIELDS = {
    "id",
    "url",
    "events",
    "description",
    "is_active",
    "disabled_reason",
    "failing_since",
    "created_at",
    "updated_at",
}
DELIVERY_FIELDS = {
    "id",
    "event_id",
    "event_type",
    "status",
    "attempts",
    "last_status_code",
    "last_error",
    "next_attempt_at",
    "created_at",
    "delivered_at",
}


@pytest.fixture(autouse=True)
def resolved_to(monkeypatch):
    """What every host name resolves to (public, unless a test says otherwise):
    no test looks a name up on the network."""
    answer = [PUBLIC_ADDRESS]
    monkeypatch.setattr(targets, "resolve", lambda host, port: list(answer))

    def set_answer(*addresses):
        answer[:] = addresses

    return set_answer


@pytest.fixture
def manager():
    return client_for(StaffFactory(perms=ALL_PERMS))


def subscribe(url="https://hooks.example.com/in", events=("order.created",), **kwargs):
    subscription, _ = services.subscription_create(url=url, events=list(events), **kwargs)
    return subscription


def order_event(aggregate_id=1, *, created_at=None, type="order.created") -> Event:
    return Event.objects.create(
        type=type,
        aggregate="order",
        aggregate_id=aggregate_id,
        sequence=1,
        data={"order": {"id": aggregate_id}},
        created_at=created_at or timezone.now(),
    )


def deliveries_for(*subscriptions, count=1) -> list[Delivery]:
    """`count` order events, fanned out to the subscriptions that want them."""
    now = timezone.now()
    for n in range(count):
        order_event(n + 1, created_at=now - timedelta(minutes=count - n))
    services.events_fan_out()
    return list(Delivery.objects.filter(subscription__in=subscriptions))


def detail(subscription) -> str:
    return f"{WEBHOOKS}{subscription.pk}/"


# --- Subscriptions -----------------------------------------------------------------


def test_staff_subscribe_a_url_and_get_its_secret_once(manager):
    response = manager.post(
        WEBHOOKS,
        {
            "url": "https://hooks.example.com/in",
            "events": ["order.status_changed", "order.created"],
            "description": "ERP",
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == SUBSCRIPTION_FIELDS | {"secret"}
    subscription = Subscription.objects.get(pk=body["id"])
    assert body["secret"].startswith("whsec_") and body["secret"] == subscription.secret
    assert body["events"] == ["order.created", "order.status_changed"]
    assert (body["url"], body["description"], body["is_active"]) == (
        "https://hooks.example.com/in",
        "ERP",
        True,
    )
    assert subscription.created_by is not None


def test_the_secret_is_never_shown_again(manager):
    subscription = subscribe()

    listed = manager.get(WEBHOOKS).json()["results"][0]
    read = manager.get(detail(subscription)).json()
    changed = manager.patch(detail(subscription), {"description": "x"}, format="json").json()

    for shown in (listed, read, changed):
        assert set(shown) == SUBSCRIPTION_FIELDS
        assert subscription.secret not in str(shown)


def test_subscriptions_are_listed_with_the_projects_pagination(manager):
    first, second = subscribe(), subscribe(url="https://other.example.com/", events=["*"])

    response = manager.get(WEBHOOKS, {"page_size": 1})

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 2 and body["next"] and body["previous"] is None
    assert [s["id"] for s in body["results"]] == [first.pk]
    second_page = manager.get(WEBHOOKS, {"page": 2, "page_size": 1}).json()["results"]
    assert second_page == [manager.get(detail(second)).json()]


def test_a_subscription_can_subscribe_to_every_event_type(manager):
    response = manager.post(
        WEBHOOKS, {"url": "https://hooks.example.com/", "events": ["*"]}, format="json"
    )

    assert response.status_code == 201
    assert response.json()["events"] == ["*"]


def test_a_patch_changes_only_what_it_sends_and_ignores_unknown_fields(manager):
    subscription = subscribe(description="Before")
    secret = subscription.secret

    response = manager.patch(
        detail(subscription),
        {"events": ["product.low_stock"], "secret": "whsec_mine", "disabled_reason": "x"},
        format="json",
    )

    assert response.status_code == 200, response.content
    subscription.refresh_from_db()
    assert subscription.events == ["product.low_stock"]
    assert subscription.description == "Before"
    assert subscription.secret == secret and subscription.disabled_reason == ""


def test_turning_a_disabled_subscription_on_again_clears_why_it_was_disabled(manager):
    subscription = subscribe()
    Subscription.objects.filter(pk=subscription.pk).update(
        is_active=False, disabled_reason="410 Gone", failing_since=timezone.now()
    )

    response = manager.patch(detail(subscription), {"is_active": True}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert (body["is_active"], body["disabled_reason"], body["failing_since"]) == (True, "", None)


def test_a_subscription_can_be_turned_off(manager):
    subscription = subscribe()

    response = manager.patch(detail(subscription), {"is_active": False}, format="json")

    assert response.status_code == 200
    subscription.refresh_from_db()
    assert subscription.is_active is False


def test_deleting_a_subscription_deletes_its_delivery_log(manager):
    subscription = subscribe()
    deliveries_for(subscription)

    response = manager.delete(detail(subscription))

    assert response.status_code == 204
    assert not Subscription.objects.exists() and not Delivery.objects.exists()


def test_an_unknown_subscription_is_a_404(manager):
    assert_error(manager.get(f"{WEBHOOKS}999999/"), 404, "not_found")
    assert_error(manager.post(f"{WEBHOOKS}999999/ping/"), 404, "not_found")


def test_the_trailing_slash_is_optional(manager):
    response = manager.post(
        WEBHOOKS.rstrip("/"), {"url": "https://h.example.com/", "events": ["*"]}, format="json"
    )
    assert response.status_code == 201


# --- Secrets and test events --------------------------------------------------------


def test_rotating_the_secret_shows_the_new_one_and_keeps_the_old_one_signing_for_a_day(
    manager,
):
    subscription = subscribe()
    old = subscription.secret

    response = manager.post(f"{detail(subscription)}rotate-secret/")

    assert response.status_code == 200, response.content
    new = response.json()["secret"]
    assert response.json() == {"secret": new}
    assert new.startswith("whsec_") and new != old
    subscription.refresh_from_db()
    assert subscription.signing_secrets() == [new, old]
    tomorrow = timezone.now() + timedelta(hours=24, minutes=1)
    assert subscription.signing_secrets(now=tomorrow) == [new]


def test_a_ping_queues_a_webhook_ping_for_that_subscription_alone(manager):
    subscription, other = subscribe(events=["*"]), subscribe(events=["*"])

    response = manager.post(f"{detail(subscription)}ping/")

    assert response.status_code == 202, response.content
    ping = Event.objects.get(type=Event.Type.WEBHOOK_PING)
    assert response.json() == {"event_id": ping.webhook_id}
    assert (ping.aggregate, ping.aggregate_id) == ("webhook", subscription.pk)
    services.events_fan_out()
    assert list(Delivery.objects.values_list("subscription", "event")) == [
        (subscription.pk, ping.pk)
    ]
    assert other.pk not in Delivery.objects.values_list("subscription", flat=True)


# --- The delivery log and redeliveries -----------------------------------------------


def test_the_delivery_log_lists_a_subscriptions_deliveries_newest_first(manager):
    subscription, other = subscribe(), subscribe(events=["*"])
    deliveries_for(subscription, other, count=3)

    response = manager.get(f"{detail(subscription)}deliveries/")

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 3
    mine = Delivery.objects.filter(subscription=subscription).select_related("event")
    newest_first = sorted(mine, key=lambda d: (d.created_at, d.pk), reverse=True)
    assert [d["id"] for d in body["results"]] == [d.pk for d in newest_first]
    first = body["results"][0]
    assert set(first) == DELIVERY_FIELDS
    assert first["event_id"] == newest_first[0].event.webhook_id
    assert first["event_id"].startswith("evt_")
    assert (first["event_type"], first["status"], first["attempts"]) == (
        "order.created",
        "pending",
        0,
    )


def test_the_delivery_log_costs_the_same_queries_whatever_its_length(manager):
    short, long = subscribe(), subscribe(url="https://b.example.com/")
    deliveries_for(short, long, count=1)
    Subscription.objects.filter(pk=short.pk).update(is_active=False)
    deliveries_for(long, count=6)  # the short log stays at one
    assert Delivery.objects.filter(subscription=short).count() == 1
    assert Delivery.objects.filter(subscription=long).count() == 7

    def queries(subscription) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert manager.get(f"{detail(subscription)}deliveries/").status_code == 200
        return len(captured)

    queries(long)  # the member's permissions, read once and kept on the user
    assert queries(short) == queries(long)


def test_a_redelivery_is_a_new_delivery_of_the_same_event(manager):
    subscription = subscribe()
    (delivery,) = deliveries_for(subscription)

    response = manager.post(f"{detail(subscription)}deliveries/{delivery.pk}/redeliver/")

    assert response.status_code == 202, response.content
    again = Delivery.objects.get(redelivery_of=delivery)
    assert (again.subscription, again.event, again.status) == (
        subscription,
        delivery.event,
        "pending",
    )
    body = response.json()
    assert set(body) == DELIVERY_FIELDS
    assert (body["id"], body["event_id"]) == (again.pk, delivery.event.webhook_id)


def test_another_subscriptions_delivery_is_a_404_and_is_not_redelivered(manager):
    subscription, other = subscribe(), subscribe()
    deliveries_for(subscription, other)
    theirs = Delivery.objects.get(subscription=other)

    response = manager.post(f"{detail(subscription)}deliveries/{theirs.pk}/redeliver/")

    assert_error(response, 404, "not_found")
    assert Delivery.objects.count() == 2


# --- Validation ----------------------------------------------------------------------


def test_a_url_resolving_to_a_private_address_is_refused(manager, settings, resolved_to):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    resolved_to("127.0.0.1")

    response = manager.post(
        WEBHOOKS, {"url": "https://internal.example.com/", "events": ["*"]}, format="json"
    )

    body = assert_error(response, 400, "invalid", "url")
    assert "loopback" in body["errors"][0]["detail"]
    assert not Subscription.objects.exists()


def test_plain_http_is_refused_unless_private_targets_are_allowed(manager, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    data = {"url": "http://hooks.example.com/", "events": ["*"]}

    assert_error(manager.post(WEBHOOKS, data, format="json"), 400, "invalid", "url")

    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    assert manager.post(WEBHOOKS, data, format="json").status_code == 201


def test_a_local_receiver_is_allowed_in_development(manager, settings, resolved_to):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = True
    resolved_to("127.0.0.1")

    response = manager.post(
        WEBHOOKS, {"url": "http://localhost:8000/hook", "events": ["*"]}, format="json"
    )

    assert response.status_code == 201, response.content


@pytest.mark.parametrize(
    ("events", "code"),
    [
        (["order.shipped"], "invalid"),
        (["*", "order.created"], "invalid"),
        (["webhook.ping"], "invalid"),
        ([], "empty"),
        ("order.created", "not_a_list"),
    ],
)
def test_event_types_must_be_known_or_a_lone_star(manager, events, code):
    response = manager.post(
        WEBHOOKS, {"url": "https://hooks.example.com/", "events": events}, format="json"
    )

    assert_error(response, 400, code, "events")
    assert not Subscription.objects.exists()


def test_a_url_and_event_types_are_required(manager):
    body = assert_error(manager.post(WEBHOOKS, {}, format="json"), 400, "required", "url")
    assert any(e["attr"] == "events" for e in body["errors"])


def test_a_refused_change_changes_nothing(manager, settings, resolved_to):
    settings.WEBHOOK_ALLOW_PRIVATE_TARGETS = False
    subscription = subscribe()
    resolved_to("10.0.0.5")

    response = manager.patch(
        detail(subscription),
        {"url": "https://intranet.example.com/", "description": "moved"},
        format="json",
    )

    assert_error(response, 400, "invalid", "url")
    subscription.refresh_from_db()
    assert (subscription.url, subscription.description) == ("https://hooks.example.com/in", "")


def test_an_unknown_event_type_in_a_patch_is_refused(manager):
    subscription = subscribe()

    response = manager.patch(detail(subscription), {"events": ["nope"]}, format="json")

    assert_error(response, 400, "invalid", "events")
    subscription.refresh_from_db()
    assert subscription.events == ["order.created"]


def test_the_answers_conform_to_the_documented_schema(manager, client):
    created = manager.post(
        WEBHOOKS, {"url": "https://hooks.example.com/", "events": ["*"]}, format="json"
    )
    assert_documented(client, "/api/v1/webhooks/", "post", created)
    subscription = Subscription.objects.get(pk=created.json()["id"])
    (delivery,) = deliveries_for(subscription)
    path = "/api/v1/webhooks/{id}/"
    for method, suffix, response in [
        ("post", "ping/", manager.post(f"{detail(subscription)}ping/")),
        ("post", "rotate-secret/", manager.post(f"{detail(subscription)}rotate-secret/")),
        ("get", "deliveries/", manager.get(f"{detail(subscription)}deliveries/")),
        (
            "post",
            "deliveries/{delivery_id}/redeliver/",
            manager.post(f"{detail(subscription)}deliveries/{delivery.pk}/redeliver/"),
        ),
        ("patch", "", manager.patch(detail(subscription), {"events": ["x"]}, format="json")),
    ]:
        assert response.status_code in (200, 202, 400), response.content
        assert_documented(client, path + suffix, method, response)


# --- Who may do what ---------------------------------------------------------------


@dataclass
class Endpoint:
    method: str
    path: str  # formatted with {subscription} and {delivery}
    needs: str
    status: int
    body: dict = field(default_factory=dict)

    def call(self, client, subscription, delivery):
        path = self.path.format(subscription=subscription.pk, delivery=delivery.pk)
        return getattr(client, self.method)(f"{WEBHOOKS}{path}", self.body or None, format="json")


ENDPOINTS = {
    "list": Endpoint("get", "", "webhooks.view_subscription", 200),
    "read": Endpoint("get", "{subscription}/", "webhooks.view_subscription", 200),
    "create": Endpoint(
        "post",
        "",
        "webhooks.add_subscription",
        201,
        {"url": "https://new.example.com/", "events": ["*"]},
    ),
    "change": Endpoint(
        "patch", "{subscription}/", "webhooks.change_subscription", 200, {"description": "new"}
    ),
    "delete": Endpoint("delete", "{subscription}/", "webhooks.delete_subscription", 204),
    "rotate": Endpoint(
        "post", "{subscription}/rotate-secret/", "webhooks.change_subscription", 200
    ),
    "ping": Endpoint("post", "{subscription}/ping/", "webhooks.change_subscription", 202),
    "log": Endpoint("get", "{subscription}/deliveries/", "webhooks.view_subscription", 200),
    "redeliver": Endpoint(
        "post",
        "{subscription}/deliveries/{delivery}/redeliver/",
        "webhooks.change_subscription",
        202,
    ),
}


@pytest.fixture
def scene():
    subscription = subscribe()
    (delivery,) = deliveries_for(subscription)
    return subscription, delivery


def state() -> tuple:
    """Everything a webhooks request could change."""
    return (
        list(
            Subscription.objects.order_by("pk").values_list(
                "pk", "url", "events", "description", "is_active", "secret", "previous_secret"
            )
        ),
        list(Delivery.objects.order_by("pk").values_list("pk", "event")),
        Event.objects.count(),
    )


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_staff_holding_the_permission_an_endpoint_needs_may_use_it(name, scene):
    endpoint = ENDPOINTS[name]
    before = state()

    response = endpoint.call(client_for(StaffFactory(perms=[endpoint.needs])), *scene)

    assert response.status_code == endpoint.status, response.content
    if endpoint.method != "get":
        assert state() != before


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_staff_holding_every_other_webhooks_permission_are_refused(name, scene):
    endpoint = ENDPOINTS[name]
    member = StaffFactory(perms=[perm for perm in ALL_PERMS if perm != endpoint.needs])
    before = state()

    response = endpoint.call(client_for(member), *scene)

    assert_error(response, 403, "permission_denied")
    assert state() == before


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_staff_status_alone_grants_nothing(name, scene):
    before = state()

    # The factory's default: every permission of the other apps, none of these.
    response = ENDPOINTS[name].call(client_for(StaffFactory()), *scene)

    assert_error(response, 403, "permission_denied")
    assert state() == before


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_customers_are_refused_even_holding_the_permissions(name, scene):
    customer = UserFactory()
    customer.user_permissions.set(permissions(*ALL_PERMS))
    before = state()

    response = ENDPOINTS[name].call(client_for(customer), *scene)

    assert_error(response, 403, "permission_denied")
    assert state() == before


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_anonymous_callers_must_authenticate(name, scene):
    before = state()

    response = ENDPOINTS[name].call(client_for(None), *scene)

    assert_error(response, 401, "not_authenticated")
    assert state() == before
