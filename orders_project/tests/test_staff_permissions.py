"""Staff act through the API with the Django model permissions that bound
them in the admin (SPEC §3): every staff endpoint, with the permissions it
needs and with one of them missing. `is_staff` alone grants nothing; a
missing permission is a 403 `permission_denied` (or, where the permission is
what lets a member see the object at all, a 404) and changes nothing.

The matrix is written out here, independently of the code: docs/permissions.md
is the same table for people."""

from dataclasses import dataclass, field

import pytest
from django.contrib.auth.models import Permission

from accounts.models import User
from accounts.tests.factories import StaffFactory, UserFactory
from core.testing import assert_error, client_for
from inventory.models import Product, StockMovement
from inventory.tests.factories import ProductFactory
from orders.models import Order, OrderEvent
from orders.statuses import OrderStatus
from orders.tests.factories import place_order

pytestmark = pytest.mark.django_db

S = OrderStatus


@dataclass
class Scene:
    customer: User
    product: Product  # stocked, ordered
    spare: Product  # never stocked: deletable
    order: Order  # the customer's, pending

    @classmethod
    def make(cls):
        customer = UserFactory(email="customer@example.com")
        product = ProductFactory(sku="MTX-1", stock=20)
        spare = ProductFactory(sku="MTX-SPARE", stock=0, is_active=False)
        order = place_order(customer, (product, 2))
        return cls(customer, product, spare, order)


@dataclass
class Endpoint:
    method: str
    path: str  # formatted with the scene: {product}, {spare}, {order}
    needs: tuple[str, ...]  # every permission it needs
    status: int  # the answer with them
    body: dict = field(default_factory=dict)
    # The answer without one of them, by permission (default: 403).
    refused: dict = field(default_factory=dict)

    def call(self, client, scene):
        path = self.path.format(
            product=scene.product.pk, spare=scene.spare.pk, order=scene.order.pk
        )
        return getattr(client, self.method)(f"/api/v1/{path}", self.body or None, format="json")


# Seeing another customer's order takes view_order (or change_order): without
# it staff are customers, and the order is someone else's (404).
HIDDEN = {"orders.view_order": 404}

ENDPOINTS = {
    "create a product": Endpoint(
        "post",
        "products/",
        ("inventory.add_product",),
        201,
        {"sku": "MTX-NEW", "name": "New", "price": "1.00"},
    ),
    "change a product": Endpoint(
        "patch", "products/{product}/", ("inventory.change_product",), 200, {"price": "0.01"}
    ),
    "delete a product": Endpoint(
        "delete",
        "products/{spare}/",
        ("inventory.view_product", "inventory.delete_product"),
        204,
        refused={"inventory.view_product": 404},  # an inactive product is staff's to see
    ),
    "adjust stock": Endpoint(
        "post",
        "products/{product}/stock-adjustments/",
        ("inventory.adjust_stock",),
        201,
        {"delta": 5, "reason": "restock"},
    ),
    "read the ledger": Endpoint(
        "get", "products/{product}/stock-movements/", ("inventory.view_stockmovement",), 200
    ),
    "read another's order": Endpoint(
        "get", "orders/{order}/", ("orders.view_order",), 200, {}, HIDDEN
    ),
    "read another's history": Endpoint(
        "get", "orders/{order}/events/", ("orders.view_order",), 200, {}, HIDDEN
    ),
    "move an order": Endpoint(
        "patch",
        "orders/{order}/",
        ("orders.view_order", "orders.move_order"),
        200,
        {"status": "processing"},
        HIDDEN,
    ),
    "cancel an order": Endpoint(
        "post",
        "orders/{order}/cancel/",
        ("orders.view_order", "orders.move_order"),
        200,
        {},
        HIDDEN,
    ),
    "cancel by DELETE": Endpoint(
        "delete", "orders/{order}/", ("orders.view_order", "orders.move_order"), 200, {}, HIDDEN
    ),
    "edit the delivery details": Endpoint(
        "patch",
        "orders/{order}/",
        ("orders.view_order", "orders.change_order"),
        200,
        {"shipping_address": "Elsewhere"},
        HIDDEN,
    ),
}

ALL_PERMISSIONS = sorted({perm for endpoint in ENDPOINTS.values() for perm in endpoint.needs})
# As in the admin, the change permission lets a member see too: to take
# "view" away, both go.
ALSO_SHOWS = {
    "orders.view_order": {"orders.change_order"},
    "inventory.view_product": {"inventory.change_product"},
}


def staff_holding(*perms: str) -> User:
    return StaffFactory(perms=list(perms))


def state() -> tuple:
    """Everything a staff request could change."""
    return (
        list(
            Product.objects.order_by("pk").values_list("pk", "price", "stock_on_hand", "is_active")
        ),
        list(Order.objects.order_by("pk").values_list("pk", "status", "shipping_address")),
        StockMovement.objects.count(),
        OrderEvent.objects.count(),
    )


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_staff_with_the_permissions_an_endpoint_needs_may_use_it(name):
    endpoint, scene = ENDPOINTS[name], Scene.make()
    before = state()

    response = endpoint.call(client_for(staff_holding(*endpoint.needs)), scene)

    assert response.status_code == endpoint.status, response.content
    if endpoint.method != "get":
        assert state() != before


@pytest.mark.parametrize(
    ("name", "missing"),
    [(name, perm) for name, endpoint in ENDPOINTS.items() for perm in endpoint.needs],
)
def test_staff_missing_one_permission_are_refused_and_nothing_changes(name, missing):
    endpoint, scene = ENDPOINTS[name], Scene.make()
    # Every other permission of the matrix: only `missing` is lacking.
    lacking = {missing, *ALSO_SHOWS.get(missing, ())}
    member = staff_holding(*(perm for perm in ALL_PERMISSIONS if perm not in lacking))
    before = state()

    response = endpoint.call(client_for(member), scene)

    status = endpoint.refused.get(missing, 403)
    assert_error(response, status, "permission_denied" if status == 403 else "not_found")
    assert state() == before


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_is_staff_alone_grants_nothing(name):
    endpoint, scene = ENDPOINTS[name], Scene.make()
    before = state()

    response = endpoint.call(client_for(staff_holding()), scene)

    assert response.status_code in (403, 404), response.content
    assert state() == before


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_a_permission_without_staff_status_grants_nothing(name):
    endpoint, scene = ENDPOINTS[name], Scene.make()
    customer = UserFactory()
    customer.user_permissions.set(Permission.objects.all())
    before = state()

    response = endpoint.call(client_for(customer), scene)

    assert response.status_code in (403, 404), response.content
    assert state() == before


def test_a_superuser_holds_every_permission():
    scene = Scene.make()
    root = StaffFactory(perms=[], is_superuser=True)
    for name, endpoint in ENDPOINTS.items():
        if name == "cancel by DELETE":
            continue  # the order is cancelled already by then
        response = endpoint.call(client_for(root), scene)
        assert response.status_code == endpoint.status, (name, response.content)
        scene.order.refresh_from_db()


# --- What staff see -------------------------------------------------------------------


def test_the_catalogue_s_stock_figures_and_inactive_products_need_view_product():
    scene = Scene.make()
    with_view = client_for(staff_holding("inventory.view_product")).get("/api/v1/products/")
    without = client_for(staff_holding("orders.view_order")).get("/api/v1/products/")

    listed = {row["sku"]: row for row in with_view.json()["results"]}
    assert set(listed) == {"MTX-1", "MTX-SPARE"}
    assert listed["MTX-1"]["stock_on_hand"] == 20
    assert [row["sku"] for row in without.json()["results"]] == ["MTX-1"]
    assert "stock_on_hand" not in without.json()["results"][0]
    assert scene.product.pk


def test_the_order_list_shows_every_order_only_with_view_order():
    scene = Scene.make()
    viewer = staff_holding("orders.view_order")
    member = staff_holding("orders.move_order")
    own = place_order(member, (scene.product, 1))

    everything = client_for(viewer).get("/api/v1/orders/").json()["results"]
    mine = client_for(member).get("/api/v1/orders/").json()["results"]

    assert {order["id"] for order in everything} == {scene.order.pk, own.pk}
    assert [order["id"] for order in mine] == [own.pk]


def test_placing_for_a_customer_needs_add_order_else_the_order_is_the_member_s_own():
    scene = Scene.make()
    body = {
        "customer_id": scene.customer.pk,
        "items": [{"product_id": scene.product.pk, "quantity": 1}],
    }
    placer = staff_holding("orders.add_order")
    other = staff_holding("orders.view_order")

    placed_for = client_for(placer).post("/api/v1/orders/", body, format="json")
    placed_own = client_for(other).post("/api/v1/orders/", body, format="json")

    assert placed_for.json()["customer"]["id"] == scene.customer.pk
    assert placed_own.json()["customer"]["id"] == other.pk


# --- The review's replay ----------------------------------------------------------------


def test_a_member_who_may_only_view_orders_and_products_changes_nothing():
    """The finding as the review made it: view_order and view_product only."""
    scene = Scene.make()
    client = client_for(staff_holding("orders.view_order", "inventory.view_product"))
    before = state()
    order, product = f"/api/v1/orders/{scene.order.pk}/", f"/api/v1/products/{scene.product.pk}/"

    answers = [
        client.patch(order, {"status": "processing"}, format="json"),
        client.post(f"{order}cancel/", {}, format="json"),
        client.post(
            f"{product}stock-adjustments/", {"delta": 5, "reason": "restock"}, format="json"
        ),
        client.patch(product, {"price": "0.01"}, format="json"),
        client.post(
            "/api/v1/products/", {"sku": "X-1", "name": "X", "price": "1.00"}, format="json"
        ),
    ]

    for response in answers:
        assert_error(response, 403, "permission_denied")
    assert state() == before
    assert client.get(order).status_code == 200  # what they may do still works
