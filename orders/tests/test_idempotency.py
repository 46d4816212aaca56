"""`Idempotency-Key` on order creation (SPEC §6): a retry gets the first
response again and makes no second order."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.tests.factories import UserFactory
from core.testing import client_for
from inventory import services as inventory
from inventory.models import Product, StockMovement
from inventory.tests.factories import ProductFactory
from inventory.tests.helpers import assert_ledger_explains
from orders.idempotency import idempotency_delete_expired, request_fingerprint
from orders.models import IdempotencyRecord, Order, OrderLine

pytestmark = pytest.mark.django_db

LIST = "/api/v1/orders/"


def post(client, body, key, *, raw: str | None = None):
    if raw is not None:
        return client.post(LIST, raw, content_type="application/json", HTTP_IDEMPOTENCY_KEY=key)
    return client.post(LIST, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def reserved(product) -> int:
    return Product.objects.get(pk=product.pk).stock_reserved


@pytest.fixture
def customer():
    return UserFactory()


@pytest.fixture
def mug():
    return ProductFactory(sku="MUG-1", price=Decimal("12.50"), stock=10)


@pytest.fixture
def body(mug):
    return {"items": [{"product_id": mug.pk, "quantity": 2}], "notes": "gift"}


def test_a_replay_answers_the_first_response_and_makes_no_second_order(customer, mug, body):
    client = client_for(customer)
    first = post(client, body, "order-123")
    assert first.status_code == 201, first.content
    assert "Idempotent-Replayed" not in first

    again = post(client, body, "order-123")
    assert again.status_code == 201, again.content
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert again.json()["total"] == "25.00"

    assert Order.objects.count() == 1
    assert OrderLine.objects.count() == 1
    assert reserved(mug) == 2
    assert StockMovement.objects.filter(kind="reserve").count() == 1
    assert IdempotencyRecord.objects.get().key == "order-123"
    assert_ledger_explains(mug)


def test_a_replay_answers_the_order_as_it_was_first_answered(customer, mug, body):
    client = client_for(customer)
    first = post(client, body, "k1").json()
    client.post(f"{LIST}{first['id']}/cancel/")
    again = post(client, body, "k1")
    assert again["Idempotent-Replayed"] == "true"
    assert again.json()["status"] == "pending"
    assert Order.objects.get().status == "cancelled"


def test_requests_without_a_key_each_make_an_order(customer, mug, body):
    client = client_for(customer)
    a, b = client.post(LIST, body), client.post(LIST, body)
    assert (a.status_code, b.status_code) == (201, 201)
    assert a.json()["id"] != b.json()["id"]
    assert not IdempotencyRecord.objects.exists()
    assert reserved(mug) == 4


def test_the_same_key_with_another_body_is_a_422(customer, mug, body):
    client = client_for(customer)
    assert post(client, body, "k-2").status_code == 201
    other = {**body, "items": [{"product_id": mug.pk, "quantity": 3}]}

    response = post(client, other, "k-2")
    assert response.status_code == 422, response.content
    error = response.json()["errors"][0]
    assert (response.json()["type"], error["code"]) == ("client_error", "idempotency_key_reused")
    assert "Idempotent-Replayed" not in response
    assert Order.objects.count() == 1
    assert reserved(mug) == 2


def test_a_different_note_alone_makes_another_body(customer, body):
    client = client_for(customer)
    assert post(client, body, "k-3").status_code == 201
    response = post(client, {**body, "notes": "gift!"}, "k-3")
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "idempotency_key_reused"


def test_the_fingerprint_ignores_key_order_and_whitespace(customer, mug):
    client = client_for(customer)
    first = post(
        client,
        None,
        "k-4",
        raw=json.dumps({"items": [{"product_id": mug.pk, "quantity": 2}], "notes": "gift"}),
    )
    assert first.status_code == 201, first.content
    reordered = (
        f'{{\n  "notes" : "gift",\n  "items": [ {{ "quantity": 2,   "product_id": {mug.pk} }} ]\n}}'
    )
    again = post(client, None, "k-4", raw=reordered)
    assert again.status_code == 201, again.content
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert Order.objects.count() == 1


def test_the_fingerprint_is_canonical_but_not_blind():
    a = {"items": [{"product_id": 1, "quantity": 2}], "notes": "x"}
    b = {"notes": "x", "items": [{"quantity": 2, "product_id": 1}]}
    assert request_fingerprint(a) == request_fingerprint(b)
    assert request_fingerprint(a) != request_fingerprint({**a, "notes": "y"})
    # Line order is meaningful: it names the lines in errors.
    two = {"items": [{"product_id": 1, "quantity": 1}, {"product_id": 2, "quantity": 1}]}
    swapped = {"items": list(reversed(two["items"]))}
    assert request_fingerprint(two) != request_fingerprint(swapped)


def test_keys_belong_to_one_user(customer, mug, body):
    first = post(client_for(customer), body, "shared-key")
    other = UserFactory()
    second = post(client_for(other), body, "shared-key")
    assert second.status_code == 201, second.content
    assert "Idempotent-Replayed" not in second
    assert second.json()["id"] != first.json()["id"]
    assert second.json()["customer"]["id"] == other.pk
    assert Order.objects.count() == 2
    assert reserved(mug) == 4
    assert IdempotencyRecord.objects.count() == 2


def test_a_refusal_for_stock_is_not_remembered(customer):
    scarce = ProductFactory(stock=1)
    body = {"items": [{"product_id": scarce.pk, "quantity": 2}]}
    client = client_for(customer)

    refused = post(client, body, "retry-me")
    assert refused.status_code == 409
    assert refused.json()["errors"][0]["code"] == "insufficient_stock"
    assert not IdempotencyRecord.objects.exists()
    again = post(client, body, "retry-me")
    assert again.status_code == 409
    assert "Idempotent-Replayed" not in again

    inventory.stock_adjust(product=scarce, delta=5, reason="restock", actor=None)
    response = post(client, body, "retry-me")
    assert response.status_code == 201, response.content
    assert "Idempotent-Replayed" not in response
    assert Order.objects.count() == 1
    assert reserved(scarce) == 2
    assert_ledger_explains(scarce)


def test_a_refusal_for_bad_input_is_not_remembered(customer, mug):
    client = client_for(customer)
    duplicate = {"items": [{"product_id": mug.pk, "quantity": 1}] * 2}
    assert post(client, duplicate, "k-5").status_code == 400
    assert not IdempotencyRecord.objects.exists()
    fixed = {"items": [{"product_id": mug.pk, "quantity": 2}]}
    assert post(client, fixed, "k-5").status_code == 201


def test_an_expired_key_makes_a_new_order(customer, mug, body):
    client = client_for(customer)
    first = post(client, body, "old-key").json()
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))

    second = post(client, body, "old-key")
    assert second.status_code == 201, second.content
    assert "Idempotent-Replayed" not in second
    assert second.json()["id"] != first["id"]
    assert Order.objects.count() == 2
    assert reserved(mug) == 4

    # The key now answers for the new order.
    third = post(client, body, "old-key")
    assert third["Idempotent-Replayed"] == "true"
    assert third.json()["id"] == second.json()["id"]
    assert Order.objects.count() == 2


def test_an_expired_key_may_carry_another_body(customer, mug, body):
    client = client_for(customer)
    post(client, body, "old-key-2")
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=25))
    response = post(client, {"items": [{"product_id": mug.pk, "quantity": 1}]}, "old-key-2")
    assert response.status_code == 201, response.content
    assert response.json()["items"][0]["quantity"] == 1


def test_a_key_within_its_day_still_replays(customer, body):
    client = client_for(customer)
    post(client, body, "fresh")
    IdempotencyRecord.objects.update(created_at=timezone.now() - timedelta(hours=23))
    assert post(client, body, "fresh")["Idempotent-Replayed"] == "true"
    assert Order.objects.count() == 1


def test_housekeeping_drops_only_expired_records(customer, body):
    client = client_for(customer)
    post(client, body, "a")
    post(client, {**body, "notes": "b"}, "b")
    IdempotencyRecord.objects.filter(key="a").update(
        created_at=timezone.now() - timedelta(hours=25)
    )
    assert idempotency_delete_expired() == 1
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["b"]


@pytest.mark.parametrize(
    "key",
    ["k" * 256, "k" * 300, "has space", "tab\there", "naïve", ""],
    ids=["256", "300", "space", "tab", "non-ascii", "empty"],
)
def test_a_malformed_key_is_a_400_and_nothing_is_written(customer, mug, body, key):
    response = post(client_for(customer), body, key)
    assert response.status_code == 400, response.content
    assert response.json()["type"] == "validation_error"
    assert [e["attr"] for e in response.json()["errors"]] == ["Idempotency-Key"]
    assert not Order.objects.exists()
    assert not IdempotencyRecord.objects.exists()
    assert reserved(mug) == 0


def test_a_key_with_a_trailing_newline_is_a_400(customer, mug, body):
    client = client_for(customer)
    client.raise_request_exception = False
    response = post(client, body, "abc\n")
    assert response.status_code == 400, response.content
    assert not Order.objects.exists()


def test_a_key_of_255_printable_characters_is_fine(customer, body):
    key = "!~" + "k" * 253
    assert len(key) == 255
    response = post(client_for(customer), body, key)
    assert response.status_code == 201, response.content
    assert IdempotencyRecord.objects.get().key == key
