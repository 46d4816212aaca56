"""The product catalogue and its stock over HTTP: /api/v1/products/ (SPEC §3, §5)."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.tests.factories import StaffFactory, UserFactory
from accounts.tests.helpers import bearer_client
from core.testing import assert_error, client_for
from inventory import services
from inventory.models import Product, StockMovement
from inventory.tests.factories import ProductFactory
from orders.tests.factories import OrderFactory

pytestmark = pytest.mark.django_db

LIST = "/api/v1/products/"

PUBLIC_FIELDS = {
    "id",
    "sku",
    "name",
    "description",
    "price",
    "currency",
    "is_active",
    "stock_available",
    "created_at",
    "updated_at",
}
STAFF_ONLY_FIELDS = {"stock_on_hand", "stock_reserved", "low_stock_threshold"}
MOVEMENT_FIELDS = {"id", "kind", "quantity", "order", "actor", "note", "created_at"}


def detail(pk) -> str:
    return f"{LIST}{pk}/"


def adjustments(pk) -> str:
    return f"{LIST}{pk}/stock-adjustments/"


def movements(pk) -> str:
    return f"{LIST}{pk}/stock-movements/"


@pytest.fixture
def staff_client(staff_user):
    return client_for(staff_user)


def db_state():
    """Every product and movement as stored, to show that a request changed nothing."""
    products = list(
        Product.objects.order_by("pk").values_list(
            "pk",
            "sku",
            "name",
            "description",
            "price",
            "is_active",
            "stock_on_hand",
            "stock_reserved",
            "low_stock_threshold",
            "updated_at",
        )
    )
    ledger = list(
        StockMovement.objects.order_by("pk").values_list(
            "pk", "product_id", "kind", "quantity", "order_id", "actor_id", "note"
        )
    )
    return products, ledger


def reserve(product, quantity, order=None):
    """Reserve stock for an order, as placing an order will; the product is then "ordered"."""
    order = order or OrderFactory()
    services.stock_reserve(order=order, lines={product.pk: quantity})
    product.refresh_from_db()
    return order


def skus(response) -> list[str]:
    assert response.status_code == 200, response.content
    return [row["sku"] for row in response.json()["results"]]


# --- Permission matrix ---------------------------------------------------------------

# name: (method, url for a product pk, body, status for staff)
ENDPOINTS = {
    "list": ("get", lambda pk: LIST, None, 200),
    "retrieve": ("get", detail, None, 200),
    "create": ("post", lambda pk: LIST, {"sku": "NEW-1", "name": "New", "price": "1.00"}, 201),
    "partial_update": ("patch", detail, {"name": "Renamed", "price": "2.50"}, 200),
    "delete": ("delete", detail, None, 204),
    "stock_adjustment": ("post", adjustments, {"delta": 3, "reason": "restock"}, 201),
    "stock_movements": ("get", movements, None, 200),
}
WRITES = {"create", "partial_update", "delete", "stock_adjustment"}
STAFF_ONLY_READS = {"stock_movements"}


def expected(role: str, endpoint: str):
    """(status, error code or None) the SPEC promises this role on this endpoint."""
    refused = endpoint in WRITES or endpoint in STAFF_ONLY_READS
    if role == "staff" or not refused:
        return ENDPOINTS[endpoint][3], None
    if role == "anonymous":
        return 401, "not_authenticated"
    return 403, "permission_denied"


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("role", ["anonymous", "customer", "staff"])
def test_permission_matrix(role, endpoint):
    user = {"anonymous": None, "customer": UserFactory(), "staff": StaffFactory()}[role]
    product = ProductFactory(sku="MATRIX-1", name="Matrix", stock=0)
    method, url, body, _ = ENDPOINTS[endpoint]
    before = db_state()

    response = getattr(client_for(user), method)(url(product.pk), body, format="json")

    status, code = expected(role, endpoint)
    if code:
        assert_error(response, status, code)
    else:
        assert response.status_code == status, response.content
    if endpoint in WRITES and role == "staff":
        assert db_state() != before
    else:
        # Reads and refused writes leave the catalogue and the ledger as they were.
        assert db_state() == before


@pytest.mark.parametrize("role", ["anonymous", "customer"])
def test_refused_writes_change_nothing_even_on_an_inactive_product(role):
    user = UserFactory() if role == "customer" else None
    product = ProductFactory(is_active=False, stock=2)
    client = client_for(user)
    status, code = expected(role, "delete")
    before = db_state()

    for response in (
        client.patch(detail(product.pk), {"is_active": True}, format="json"),
        client.delete(detail(product.pk)),
        client.post(adjustments(product.pk), {"delta": 1, "reason": "restock"}, format="json"),
    ):
        assert_error(response, status, code)
    assert db_state() == before


def test_a_customer_with_a_real_jwt_reads_the_catalogue_but_cannot_write():
    product = ProductFactory(stock=3)
    client = bearer_client(UserFactory())
    before = db_state()

    listed = client.get(LIST)
    patched = client.patch(detail(product.pk), {"name": "Hijacked"}, format="json")
    ledger = client.get(movements(product.pk))

    assert listed.status_code == 200, listed.content
    assert [row["id"] for row in listed.json()["results"]] == [product.pk]
    assert STAFF_ONLY_FIELDS.isdisjoint(listed.json()["results"][0])
    assert_error(patched, 403, "permission_denied")
    assert_error(ledger, 403, "permission_denied")
    assert db_state() == before


def test_staff_with_a_real_jwt_create_a_product_and_see_its_ledger():
    staff = StaffFactory()
    client = bearer_client(staff)

    created = client.post(LIST, {"sku": "JWT-1", "name": "Via JWT", "price": "3.00"}, format="json")
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    adjusted = client.post(adjustments(pk), {"delta": 2, "reason": "restock"}, format="json")
    ledger = client.get(movements(pk))

    assert adjusted.status_code == 201, adjusted.content
    assert Product.objects.get(pk=pk).stock_on_hand == 2
    assert ledger.status_code == 200, ledger.content
    assert [(m["kind"], m["quantity"], m["actor"]) for m in ledger.json()["results"]] == [
        ("restock", 2, staff.email)
    ]


def test_a_bad_bearer_token_is_refused_with_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")

    response = client.post(LIST, {"sku": "X-1", "name": "X", "price": "1.00"}, format="json")

    assert response.status_code == 401, response.content
    assert not Product.objects.exists()


# --- Visibility and representation -----------------------------------------------------


@pytest.mark.parametrize("role", ["anonymous", "customer"])
def test_customers_and_visitors_list_only_active_products(role):
    user = UserFactory() if role == "customer" else None
    active = ProductFactory(name="Active one")
    ProductFactory(name="Inactive one", is_active=False)

    response = client_for(user).get(LIST)

    assert response.status_code == 200, response.content
    assert response.json()["count"] == 1
    assert [row["id"] for row in response.json()["results"]] == [active.pk]


@pytest.mark.parametrize("role", ["anonymous", "customer"])
def test_customers_and_visitors_get_404_for_an_inactive_product(role):
    user = UserFactory() if role == "customer" else None
    inactive = ProductFactory(is_active=False)

    response = client_for(user).get(detail(inactive.pk))

    assert_error(response, 404, "not_found")


def test_a_customer_filtering_for_inactive_products_still_sees_none(auth_client):
    ProductFactory(is_active=False)
    ProductFactory(is_active=True)

    response = auth_client.get(LIST, {"is_active": "false"})

    assert response.status_code == 200, response.content
    assert response.json()["count"] == 0


def test_staff_list_and_retrieve_inactive_products(staff_client):
    active = ProductFactory(name="A active")
    inactive = ProductFactory(name="B inactive", is_active=False)

    listed = staff_client.get(LIST)
    retrieved = staff_client.get(detail(inactive.pk))

    assert [row["id"] for row in listed.json()["results"]] == [active.pk, inactive.pk]
    assert retrieved.status_code == 200, retrieved.content
    assert retrieved.json()["is_active"] is False


@pytest.mark.parametrize("role", ["anonymous", "customer"])
def test_customers_and_visitors_do_not_see_the_stock_internals(role):
    user = UserFactory() if role == "customer" else None
    product = ProductFactory(price=Decimal("19.99"), stock=10)
    reserve(product, 3)
    client = client_for(user)

    for row in (client.get(LIST).json()["results"][0], client.get(detail(product.pk)).json()):
        assert set(row) == PUBLIC_FIELDS
        assert row["stock_available"] == 7
        assert row["currency"] == settings.CURRENCY
        assert row["price"] == "19.99"


def test_staff_see_the_stock_figures(staff_client):
    product = ProductFactory(price=Decimal("19.99"), low_stock_threshold=4, stock=10)
    reserve(product, 3)

    for row in (
        staff_client.get(LIST).json()["results"][0],
        staff_client.get(detail(product.pk)).json(),
    ):
        assert set(row) == PUBLIC_FIELDS | STAFF_ONLY_FIELDS
        assert (row["stock_on_hand"], row["stock_reserved"], row["stock_available"]) == (10, 3, 7)
        assert row["low_stock_threshold"] == 4
        assert row["currency"] == settings.CURRENCY
        assert row["price"] == "19.99"


def test_the_currency_comes_from_settings(api_client, settings):
    settings.CURRENCY = "EUR"
    product = ProductFactory()

    assert api_client.get(detail(product.pk)).json()["currency"] == "EUR"


@pytest.mark.parametrize(
    ("stored", "shown"), [("5", "5.00"), ("0.5", "0.50"), ("1234.1", "1234.10")]
)
def test_prices_are_strings_with_two_decimals(api_client, stored, shown):
    product = ProductFactory(price=Decimal(stored))

    assert api_client.get(detail(product.pk)).json()["price"] == shown


def test_the_product_detail_shows_its_own_values(api_client):
    product = ProductFactory(sku="DET-1", name="Detailed", description="Long text")

    body = api_client.get(detail(product.pk)).json()

    assert (body["id"], body["sku"], body["name"], body["description"]) == (
        product.pk,
        "DET-1",
        "Detailed",
        "Long text",
    )
    assert body["is_active"] is True


# --- Filters, ordering, pagination -------------------------------------------------------


def test_search_matches_sku_and_name_case_insensitively(api_client):
    ProductFactory(sku="MUG-RED", name="Red cup")
    ProductFactory(sku="TSHIRT-1", name="Coffee mug t-shirt")
    ProductFactory(sku="PLATE-1", name="Plate")

    assert sorted(skus(api_client.get(LIST, {"search": "mug"}))) == ["MUG-RED", "TSHIRT-1"]
    assert skus(api_client.get(LIST, {"search": "red c"})) == ["MUG-RED"]
    assert skus(api_client.get(LIST, {"search": "plate-1"})) == ["PLATE-1"]
    assert skus(api_client.get(LIST, {"search": "nothing"})) == []


def test_staff_filter_by_is_active(staff_client):
    ProductFactory(sku="ON-1")
    ProductFactory(sku="OFF-1", is_active=False)

    assert skus(staff_client.get(LIST, {"is_active": "true"})) == ["ON-1"]
    assert skus(staff_client.get(LIST, {"is_active": "false"})) == ["OFF-1"]
    assert sorted(skus(staff_client.get(LIST))) == ["OFF-1", "ON-1"]


def test_in_stock_filters_on_available_stock(api_client):
    ProductFactory(sku="STOCKED", stock=5)
    ProductFactory(sku="EMPTY")
    fully_reserved = ProductFactory(sku="HELD", stock=2)
    reserve(fully_reserved, 2)
    partly_reserved = ProductFactory(sku="PART", stock=3)
    reserve(partly_reserved, 1)

    assert sorted(skus(api_client.get(LIST, {"in_stock": "true"}))) == ["PART", "STOCKED"]
    assert sorted(skus(api_client.get(LIST, {"in_stock": "false"}))) == ["EMPTY", "HELD"]


def test_min_and_max_price_are_inclusive(api_client):
    for sku, price in [("P5", "5.00"), ("P10", "10.00"), ("P15", "15.00"), ("P20", "20.00")]:
        ProductFactory(sku=sku, price=Decimal(price))

    assert sorted(skus(api_client.get(LIST, {"min_price": "10"}))) == ["P10", "P15", "P20"]
    assert sorted(skus(api_client.get(LIST, {"max_price": "15.00"}))) == ["P10", "P15", "P5"]
    assert sorted(skus(api_client.get(LIST, {"min_price": "10", "max_price": "15"}))) == [
        "P10",
        "P15",
    ]


@pytest.fixture
def three_products():
    """Three products whose name, price and creation orders all differ."""
    now = timezone.now()
    rows = [
        # sku, name, price, created days ago
        ("B", "Banana", "5.00", 1),
        ("C", "Cherry", "1.00", 3),
        ("A", "Apple", "9.00", 2),
    ]
    for sku, name, price, days in rows:
        product = ProductFactory(sku=sku, name=name, price=Decimal(price))
        Product.objects.filter(pk=product.pk).update(created_at=now - timedelta(days=days))


@pytest.mark.parametrize(
    ("ordering", "order"),
    [
        ("price", ["C", "B", "A"]),
        ("-price", ["A", "B", "C"]),
        ("name", ["A", "B", "C"]),
        ("-name", ["C", "B", "A"]),
        ("created_at", ["C", "A", "B"]),
        ("-created_at", ["B", "A", "C"]),
    ],
)
def test_ordering(api_client, three_products, ordering, order):
    assert skus(api_client.get(LIST, {"ordering": ordering})) == order


def test_the_default_order_is_by_name(api_client, three_products):
    assert skus(api_client.get(LIST)) == ["A", "B", "C"]


@pytest.mark.parametrize(
    ("ordering", "order"),
    [(",,,,,", ["A", "B", "C"]), (",", ["A", "B", "C"]), (",price,", ["C", "B", "A"])],
)
def test_empty_names_in_the_ordering_are_ignored(api_client, three_products, ordering, order):
    # Found by schemathesis: `?ordering=,,,,,` was a 500.
    assert skus(api_client.get(LIST, {"ordering": ordering, "in_stock": ""})) == order


def test_equal_prices_are_ordered_by_id(api_client):
    first = ProductFactory(sku="SAME-2", name="Zed", price=Decimal("3.00"))
    second = ProductFactory(sku="SAME-1", name="Alpha", price=Decimal("3.00"))

    ascending = api_client.get(LIST, {"ordering": "price"}).json()["results"]
    descending = api_client.get(LIST, {"ordering": "-price"}).json()["results"]

    assert [row["id"] for row in ascending] == [first.pk, second.pk]
    assert [row["id"] for row in descending] == [second.pk, first.pk]


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("in_stock", "maybe"),
        ("is_active", "perhaps"),
        ("min_price", "abc"),
        ("max_price", "abc"),
        ("min_price", "NaN"),
        ("max_price", "1e99"),
        ("min_price", "99999999999999999"),
        ("ordering", "stock_on_hand"),
        ("ordering", "-stock_reserved"),
        ("page", "0"),
        ("page", "-1"),
        ("page", "x"),
        ("page_size", "x"),
        ("page_size", "0"),
    ],
)
@pytest.mark.parametrize("role", ["anonymous", "staff"])
def test_a_malformed_query_parameter_is_a_400_naming_it(role, param, value):
    ProductFactory()
    client = client_for(StaffFactory() if role == "staff" else None)

    response = client.get(LIST, {param: value})

    assert response.status_code == 400, response.content
    body = response.json()
    assert body["type"] == "validation_error", body
    assert {error["attr"] for error in body["errors"]} == {param}, body


@pytest.mark.parametrize(
    ("body", "attr"),
    [({"search": "a\x00b"}, "search"), ({"search": "x" * 101}, "search")],
)
def test_a_search_the_database_cannot_take_is_a_400(api_client, body, attr):
    ProductFactory()

    response = api_client.get(LIST, body)

    assert response.status_code == 400, response.content
    assert {error["attr"] for error in response.json()["errors"]} == {attr}


@pytest.mark.parametrize(("value", "active"), [("1", True), ("yes", True), ("0", False)])
def test_is_active_accepts_the_usual_spellings(staff_client, value, active):
    on = ProductFactory(sku="ON-2")
    off = ProductFactory(sku="OFF-2", is_active=False)

    response = staff_client.get(LIST, {"is_active": value})

    assert skus(response) == [(on if active else off).sku]


def test_the_list_is_paginated(api_client):
    ProductFactory.create_batch(5)

    first = api_client.get(LIST, {"page_size": 2})
    last = api_client.get(LIST, {"page_size": 2, "page": 3})

    assert first.status_code == 200, first.content
    assert set(first.json()) == {"count", "next", "previous", "results"}
    assert first.json()["count"] == 5
    assert len(first.json()["results"]) == 2
    assert "page=2" in first.json()["next"]
    assert first.json()["previous"] is None
    assert len(last.json()["results"]) == 1
    assert last.json()["next"] is None
    assert last.json()["previous"] is not None


def test_the_default_page_size_is_20(api_client):
    Product.objects.bulk_create(
        Product(sku=f"BULK-{n:03d}", name=f"Bulk {n:03d}", price=Decimal("1.00")) for n in range(25)
    )

    body = api_client.get(LIST).json()

    assert body["count"] == 25
    assert len(body["results"]) == 20


def test_a_page_size_over_100_is_clamped_to_100(api_client):
    Product.objects.bulk_create(
        Product(sku=f"BULK-{n:03d}", name=f"Bulk {n:03d}", price=Decimal("1.00"))
        for n in range(105)
    )

    response = api_client.get(LIST, {"page_size": 500})

    assert response.status_code == 200, response.content
    assert response.json()["count"] == 105
    assert len(response.json()["results"]) == 100
    assert response.json()["next"] is not None


# --- Create ----------------------------------------------------------------------------


def test_staff_create_a_product(staff_client):
    response = staff_client.post(
        LIST,
        {
            "sku": "NEW-001",
            "name": "New thing",
            "description": "Shiny",
            "price": "19.99",
            "low_stock_threshold": 3,
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == PUBLIC_FIELDS | STAFF_ONLY_FIELDS
    product = Product.objects.get(sku="NEW-001")
    assert body["id"] == product.pk
    assert (product.name, product.description, product.price) == (
        "New thing",
        "Shiny",
        Decimal("19.99"),
    )
    assert product.is_active is True
    assert product.low_stock_threshold == 3
    assert body["price"] == "19.99"
    assert body["currency"] == settings.CURRENCY
    assert (body["stock_on_hand"], body["stock_reserved"], body["stock_available"]) == (0, 0, 0)


def test_a_new_product_starts_with_no_stock_whatever_is_sent(staff_client):
    response = staff_client.post(
        LIST,
        {
            "sku": "NEW-002",
            "name": "Stocked?",
            "price": "1.00",
            "stock_on_hand": 50,
            "stock_reserved": 10,
            "stock_available": 40,
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    assert (response.json()["stock_on_hand"], response.json()["stock_reserved"]) == (0, 0)
    product = Product.objects.get(sku="NEW-002")
    assert (product.stock_on_hand, product.stock_reserved) == (0, 0)
    assert not StockMovement.objects.exists()


def test_staff_can_create_an_inactive_product(staff_client):
    response = staff_client.post(
        LIST, {"sku": "OFF-9", "name": "Off", "price": "1.00", "is_active": False}, format="json"
    )

    assert response.status_code == 201, response.content
    assert Product.objects.get(sku="OFF-9").is_active is False


@pytest.mark.parametrize(
    ("body", "attr", "code"),
    [
        ({"sku": "B-1", "name": "Bad", "price": "-0.01"}, "price", "min_value"),
        ({"sku": "B-1", "name": "Bad", "price": "abc"}, "price", "invalid"),
        ({"sku": "B-1", "name": "Bad", "price": "1.999"}, "price", "max_decimal_places"),
        ({"sku": "B-1", "name": "Bad", "price": "1234567890123.00"}, "price", "max_digits"),
        ({"sku": "has space", "name": "Bad", "price": "1.00"}, "sku", "invalid"),
        ({"sku": "NUL\x00", "name": "Bad", "price": "1.00"}, "sku", "null_characters_not_allowed"),
        ({"sku": "S" * 65, "name": "Bad", "price": "1.00"}, "sku", "max_length"),
        ({"sku": "B-1", "price": "1.00"}, "name", "required"),
        ({"sku": "B-1", "name": "", "price": "1.00"}, "name", "blank"),
        ({"name": "Bad", "price": "1.00"}, "sku", "required"),
        ({"sku": "B-1", "name": "Bad"}, "price", "required"),
        (
            {"sku": "B-1", "name": "Bad", "price": "1.00", "low_stock_threshold": -1},
            "low_stock_threshold",
            "min_value",
        ),
        ({}, "sku", "required"),
        ({}, "name", "required"),
        ({}, "price", "required"),
    ],
)
def test_create_refuses_bad_input_and_creates_nothing(staff_client, body, attr, code):
    response = staff_client.post(LIST, body, format="json")

    assert_error(response, 400, code, attr)
    assert not Product.objects.exists()


def test_create_refuses_a_duplicate_sku(staff_client):
    ProductFactory(sku="DUP-1")
    before = db_state()

    response = staff_client.post(
        LIST, {"sku": "DUP-1", "name": "Again", "price": "1.00"}, format="json"
    )

    assert_error(response, 400, "unique", "sku")
    assert db_state() == before


# --- Partial update --------------------------------------------------------------------


def test_staff_change_catalogue_fields(staff_client):
    product = ProductFactory(sku="OLD-1", name="Old", price=Decimal("1.00"))

    response = staff_client.patch(
        detail(product.pk),
        {
            "sku": "NEW-1",
            "name": "New",
            "description": "Now described",
            "price": "2.50",
            "is_active": False,
            "low_stock_threshold": 9,
        },
        format="json",
    )

    assert response.status_code == 200, response.content
    product.refresh_from_db()
    assert (product.sku, product.name, product.description, product.price) == (
        "NEW-1",
        "New",
        "Now described",
        Decimal("2.50"),
    )
    assert product.is_active is False
    assert product.low_stock_threshold == 9
    body = response.json()
    assert set(body) == PUBLIC_FIELDS | STAFF_ONLY_FIELDS
    assert (body["sku"], body["price"], body["is_active"]) == ("NEW-1", "2.50", False)


def test_a_patch_leaves_the_fields_it_does_not_send(staff_client):
    product = ProductFactory(name="Keep", low_stock_threshold=12, is_active=False)

    response = staff_client.patch(detail(product.pk), {"price": "7.00"}, format="json")

    assert response.status_code == 200, response.content
    product.refresh_from_db()
    assert product.price == Decimal("7.00")
    assert (product.name, product.low_stock_threshold, product.is_active) == ("Keep", 12, False)


def test_stock_fields_sent_in_a_patch_are_ignored(staff_client):
    product = ProductFactory(stock=7)
    reserve(product, 2)
    ledger_before = db_state()[1]

    response = staff_client.patch(
        detail(product.pk),
        {"name": "Renamed", "stock_on_hand": 100, "stock_reserved": 0, "stock_available": 100},
        format="json",
    )

    assert response.status_code == 200, response.content
    product.refresh_from_db()
    assert product.name == "Renamed"
    assert (product.stock_on_hand, product.stock_reserved) == (7, 2)
    assert (response.json()["stock_on_hand"], response.json()["stock_reserved"]) == (7, 2)
    assert db_state()[1] == ledger_before


def test_a_patch_may_keep_the_products_own_sku(staff_client):
    product = ProductFactory(sku="SELF-1")

    response = staff_client.patch(detail(product.pk), {"sku": "SELF-1", "name": "X"}, format="json")

    assert response.status_code == 200, response.content


def test_a_patch_refuses_another_products_sku(staff_client):
    ProductFactory(sku="TAKEN-1")
    product = ProductFactory(sku="MINE-1")
    before = db_state()

    response = staff_client.patch(detail(product.pk), {"sku": "TAKEN-1"}, format="json")

    assert_error(response, 400, "unique", "sku")
    assert db_state() == before


@pytest.mark.parametrize(
    ("body", "attr"),
    [({"price": "-1"}, "price"), ({"sku": "a b"}, "sku"), ({"name": ""}, "name")],
)
def test_a_patch_refuses_bad_values_and_changes_nothing(staff_client, body, attr):
    product = ProductFactory()
    before = db_state()

    response = staff_client.patch(detail(product.pk), body, format="json")

    assert response.status_code == 400, response.content
    assert [error["attr"] for error in response.json()["errors"]] == [attr]
    assert db_state() == before


def test_put_is_not_allowed(staff_client):
    product = ProductFactory(name="Unchanged")
    before = db_state()

    response = staff_client.put(
        detail(product.pk), {"sku": product.sku, "name": "Put", "price": "1.00"}, format="json"
    )

    assert_error(response, 405, "method_not_allowed")
    assert db_state() == before


def test_patching_an_unknown_product_is_a_404(staff_client):
    assert_error(staff_client.patch(detail(987654), {"name": "X"}, format="json"), 404, "not_found")


# --- Delete ----------------------------------------------------------------------------


def test_staff_delete_a_product_that_was_never_ordered(staff_client):
    product = ProductFactory()
    other = ProductFactory()

    response = staff_client.delete(detail(product.pk))

    assert response.status_code == 204, response.content
    assert not Product.objects.filter(pk=product.pk).exists()
    assert Product.objects.filter(pk=other.pk).exists()


def test_a_product_with_stock_movements_is_kept_for_the_ledger(staff_client):
    product = ProductFactory(stock=5)
    services.stock_adjust(product=product, delta=-1, reason="damage", actor=None)
    movements = list(StockMovement.objects.filter(product=product).values_list("pk", flat=True))
    assert len(movements) == 2  # the restock and the damage

    response = staff_client.delete(detail(product.pk))

    assert_error(response, 409, "product_in_use")
    assert Product.objects.filter(pk=product.pk).exists()
    assert list(StockMovement.objects.filter(product=product).values_list("pk", flat=True)) == (
        movements
    )


def test_a_product_that_was_ordered_cannot_be_deleted(staff_client):
    product = ProductFactory(stock=5)
    reserve(product, 1)
    before = db_state()

    response = staff_client.delete(detail(product.pk))

    assert_error(response, 409, "product_in_use")
    assert Product.objects.filter(pk=product.pk).exists()
    assert db_state() == before


def test_a_product_stays_undeletable_after_its_order_released_the_stock(staff_client):
    product = ProductFactory(stock=5)
    order = reserve(product, 2)
    services.stock_release(order=order)

    response = staff_client.delete(detail(product.pk))

    assert_error(response, 409, "product_in_use")
    assert Product.objects.filter(pk=product.pk).exists()


def test_an_ordered_product_can_be_deactivated_instead(staff_client, api_client):
    product = ProductFactory(stock=5)
    reserve(product, 1)

    response = staff_client.patch(detail(product.pk), {"is_active": False}, format="json")

    assert response.status_code == 200, response.content
    assert_error(api_client.get(detail(product.pk)), 404, "not_found")


def test_deleting_an_unknown_product_is_a_404(staff_client):
    assert_error(staff_client.delete(detail(987654)), 404, "not_found")


# --- Stock adjustments -------------------------------------------------------------------


def test_a_restock_adds_stock_and_returns_the_movement(staff_client, staff_user):
    product = ProductFactory(stock=4)

    response = staff_client.post(
        adjustments(product.pk),
        {"delta": 6, "reason": "restock", "note": "Delivery 42"},
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["id"], body["stock_on_hand"], body["stock_available"]) == (product.pk, 10, 10)
    assert body["stock_reserved"] == 0
    movement = body["movement"]
    assert set(movement) == MOVEMENT_FIELDS
    assert (movement["kind"], movement["quantity"]) == ("restock", 6)
    assert movement["actor"] == staff_user.email
    assert movement["note"] == "Delivery 42"
    assert movement["order"] is None
    product.refresh_from_db()
    assert product.stock_on_hand == 10
    stored = StockMovement.objects.get(pk=movement["id"])
    assert (stored.product, stored.kind, stored.quantity, stored.actor) == (
        product,
        "restock",
        6,
        staff_user,
    )
    assert stored.note == "Delivery 42"


@pytest.mark.parametrize(
    ("reason", "delta", "on_hand"),
    [("return", 2, 12), ("damage", -3, 7), ("correction", -4, 6), ("correction", 5, 15)],
)
def test_every_adjustment_reason_changes_on_hand_stock(staff_client, reason, delta, on_hand):
    product = ProductFactory(stock=10)

    response = staff_client.post(
        adjustments(product.pk), {"delta": delta, "reason": reason}, format="json"
    )

    assert response.status_code == 201, response.content
    assert response.json()["stock_on_hand"] == on_hand
    assert response.json()["movement"]["kind"] == reason
    assert response.json()["movement"]["quantity"] == delta
    assert response.json()["movement"]["note"] == ""
    product.refresh_from_db()
    assert product.stock_on_hand == on_hand


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({"delta": 0, "reason": "correction"}, "delta"),
        ({"delta": 1.5, "reason": "restock"}, "delta"),
        ({"delta": "x", "reason": "restock"}, "delta"),
        ({"reason": "restock"}, "delta"),
        ({"delta": 3, "reason": "reserve"}, "reason"),
        ({"delta": 3, "reason": "ship"}, "reason"),
        ({"delta": 3, "reason": "oops"}, "reason"),
        ({"delta": 3}, "reason"),
        ({"delta": -2, "reason": "restock"}, "delta"),
        ({"delta": -2, "reason": "return"}, "delta"),
        ({"delta": 2, "reason": "damage"}, "delta"),
        ({"delta": 3, "reason": "restock", "note": "n" * 501}, "note"),
        ({"delta": 2_147_483_647, "reason": "restock"}, "delta"),
        ({"delta": 10**12, "reason": "restock"}, "delta"),
    ],
)
def test_a_bad_adjustment_is_a_400_and_changes_nothing(staff_client, body, attr):
    product = ProductFactory(stock=5)
    before = db_state()

    response = staff_client.post(adjustments(product.pk), body, format="json")

    assert response.status_code == 400, response.content
    errors = response.json()["errors"]
    assert response.json()["type"] == "validation_error"
    assert [error["attr"] for error in errors] == [attr], errors
    assert db_state() == before


def test_an_adjustment_below_the_reserved_stock_is_a_409(staff_client):
    product = ProductFactory(stock=10)
    reserve(product, 6)
    before = db_state()

    response = staff_client.post(
        adjustments(product.pk), {"delta": -5, "reason": "damage"}, format="json"
    )

    assert_error(response, 409, "insufficient_stock", "delta")
    assert db_state() == before
    product.refresh_from_db()
    assert (product.stock_on_hand, product.stock_reserved) == (10, 6)


def test_an_adjustment_down_to_exactly_the_reserved_stock_is_allowed(staff_client):
    product = ProductFactory(stock=10)
    reserve(product, 6)

    response = staff_client.post(
        adjustments(product.pk), {"delta": -4, "reason": "correction"}, format="json"
    )

    assert response.status_code == 201, response.content
    assert (response.json()["stock_on_hand"], response.json()["stock_available"]) == (6, 0)


def test_staff_may_adjust_the_stock_of_an_inactive_product(staff_client):
    product = ProductFactory(is_active=False)

    response = staff_client.post(
        adjustments(product.pk), {"delta": 3, "reason": "restock"}, format="json"
    )

    assert response.status_code == 201, response.content
    product.refresh_from_db()
    assert product.stock_on_hand == 3


@pytest.mark.parametrize("pk", ["987654", "9" * 18, "9" * 19, "1" * 25, "abc"])
@pytest.mark.parametrize("path", ["", "stock-adjustments/", "stock-movements/"])
def test_an_unknown_or_impossible_product_id_is_a_json_404(staff_client, pk, path):
    ProductFactory()
    before = db_state()
    url = f"{LIST}{pk}/{path}"

    if path == "stock-adjustments/":
        response = staff_client.post(url, {"delta": 1, "reason": "restock"}, format="json")
    else:
        response = staff_client.get(url)

    assert_error(response, 404, "not_found")
    assert db_state() == before


# --- Stock movements ---------------------------------------------------------------------


def test_the_ledger_lists_every_movement_oldest_first(staff_client, staff_user):
    product = ProductFactory(stock=10)  # restocked by the system (no actor)
    staff_client.post(
        adjustments(product.pk), {"delta": -1, "reason": "damage", "note": "Dropped"}, format="json"
    )
    order = reserve(product, 3)
    services.stock_release(order=order, note="Cancelled")
    other = ProductFactory(stock=99)  # not in this product's ledger

    response = staff_client.get(movements(product.pk))

    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"count", "next", "previous", "results"}
    assert body["count"] == 4
    rows = body["results"]
    for row in rows:
        assert set(row) == MOVEMENT_FIELDS
    assert [(r["kind"], r["quantity"], r["order"], r["actor"], r["note"]) for r in rows] == [
        ("restock", 10, None, "system", ""),
        ("damage", -1, None, staff_user.email, "Dropped"),
        ("reserve", 3, order.pk, "system", ""),
        ("release", -3, order.pk, "system", "Cancelled"),
    ]
    ids = [row["id"] for row in rows]
    assert ids == sorted(ids)
    assert set(ids) == set(product.movements.values_list("pk", flat=True))
    assert other.movements.get().pk not in ids


def test_the_ledger_is_ordered_by_time_not_by_id(staff_client):
    product = ProductFactory()
    later = services.stock_adjust(product=product, delta=5, reason="restock", actor=None)
    earlier = services.stock_adjust(product=product, delta=1, reason="restock", actor=None)
    StockMovement.objects.filter(pk=earlier.pk).update(
        created_at=later.created_at - timedelta(hours=1)
    )

    rows = staff_client.get(movements(product.pk)).json()["results"]

    assert [row["id"] for row in rows] == [earlier.pk, later.pk]


def test_the_ledger_shows_the_staff_actor_after_a_reserve_by_staff(staff_client, staff_user):
    product = ProductFactory(stock=3)
    order = OrderFactory()
    services.stock_reserve(order=order, lines={product.pk: 1}, actor=staff_user)

    rows = staff_client.get(movements(product.pk)).json()["results"]

    assert (rows[-1]["kind"], rows[-1]["order"], rows[-1]["actor"]) == (
        "reserve",
        order.pk,
        staff_user.email,
    )


def test_the_ledger_is_paginated(staff_client):
    product = ProductFactory()
    for delta in range(1, 6):
        services.stock_adjust(product=product, delta=delta, reason="restock", actor=None)

    first = staff_client.get(movements(product.pk), {"page_size": 2})
    last = staff_client.get(movements(product.pk), {"page_size": 2, "page": 3})

    assert first.status_code == 200, first.content
    assert first.json()["count"] == 5
    assert [row["quantity"] for row in first.json()["results"]] == [1, 2]
    assert first.json()["next"] is not None
    assert [row["quantity"] for row in last.json()["results"]] == [5]
    assert last.json()["next"] is None


@pytest.mark.parametrize(("param", "value"), [("page", "0"), ("page_size", "x")])
def test_the_ledger_refuses_malformed_paging(staff_client, param, value):
    product = ProductFactory(stock=1)

    response = staff_client.get(movements(product.pk), {param: value})

    assert response.status_code == 400, response.content
    assert [error["attr"] for error in response.json()["errors"]] == [param]


def test_the_ledger_ignores_product_list_filters(staff_client):
    product = ProductFactory(stock=2)

    response = staff_client.get(movements(product.pk), {"search": "no-such-product"})

    assert response.status_code == 200, response.content
    assert response.json()["count"] == 1


def test_an_empty_ledger_is_an_empty_page(staff_client):
    product = ProductFactory()

    body = staff_client.get(movements(product.pk)).json()

    assert (body["count"], body["results"], body["next"]) == (0, [], None)


def test_the_ledger_sums_to_the_products_stock(staff_client):
    product = ProductFactory(stock=10)
    staff_client.post(adjustments(product.pk), {"delta": -2, "reason": "damage"}, format="json")
    staff_client.post(adjustments(product.pk), {"delta": 3, "reason": "return"}, format="json")
    reserve(product, 4)

    rows = staff_client.get(movements(product.pk)).json()["results"]

    on_hand = sum(r["quantity"] for r in rows if r["kind"] in StockMovement.ON_HAND_KINDS)
    reserved = sum(r["quantity"] for r in rows if r["kind"] in StockMovement.RESERVED_KINDS)
    product.refresh_from_db()
    assert (on_hand, reserved) == (product.stock_on_hand, product.stock_reserved) == (11, 4)


# --- URLs ------------------------------------------------------------------------------


def test_a_post_without_the_trailing_slash_creates_like_one_with_it(staff_client):
    without = staff_client.post(
        LIST.rstrip("/"), {"sku": "NOSLASH", "name": "No slash", "price": "1.00"}, format="json"
    )
    with_slash = staff_client.post(
        LIST, {"sku": "SLASH", "name": "Slash", "price": "1.00"}, format="json"
    )

    assert without.status_code == with_slash.status_code == 201, without.content
    assert set(without.json()) == set(with_slash.json())
    assert Product.objects.filter(sku__in=["NOSLASH", "SLASH"]).count() == 2


def test_detail_and_actions_work_without_the_trailing_slash(staff_client):
    product = ProductFactory(stock=1)

    retrieved = staff_client.get(detail(product.pk).rstrip("/"))
    adjusted = staff_client.post(
        adjustments(product.pk).rstrip("/"), {"delta": 1, "reason": "restock"}, format="json"
    )
    patched = staff_client.patch(
        detail(product.pk).rstrip("/"), {"name": "Slashless"}, format="json"
    )

    assert retrieved.status_code == 200, retrieved.content
    assert adjusted.status_code == 201, adjusted.content
    assert patched.status_code == 200, patched.content
    product.refresh_from_db()
    assert (product.stock_on_hand, product.name) == (2, "Slashless")


def test_anonymous_writes_without_the_trailing_slash_are_still_refused(api_client):
    response = api_client.post(
        LIST.rstrip("/"), {"sku": "A", "name": "A", "price": "1.00"}, format="json"
    )

    assert_error(response, 401, "not_authenticated")
    assert not Product.objects.exists()


def test_malformed_json_is_a_400_and_creates_nothing(staff_client):
    response = staff_client.post(LIST, data='{"sku": ', content_type="application/json")

    assert_error(response, 400, "parse_error", error_type="client_error")
    assert not Product.objects.exists()
