"""Products and the stock ledger in the admin back office (SPEC §5, §8)."""

from decimal import Decimal

import pytest
from django.urls import reverse

from accounts.tests.factories import StaffFactory, UserFactory
from core.testing import messages_of
from inventory import services
from inventory.models import Product, StockMovement
from inventory.tests.factories import ProductFactory
from orders.tests.factories import OrderFactory

pytestmark = pytest.mark.django_db

PRODUCTS = reverse("admin:inventory_product_changelist")
PRODUCT_ADD = reverse("admin:inventory_product_add")
MOVEMENTS = reverse("admin:inventory_stockmovement_changelist")
MOVEMENT_ADD = reverse("admin:inventory_stockmovement_add")


def adjust_url(product) -> str:
    return reverse("admin:inventory_product_adjust_stock", args=[product.pk])


def change_url(product) -> str:
    return reverse("admin:inventory_product_change", args=[product.pk])


def delete_url(product) -> str:
    return reverse("admin:inventory_product_delete", args=[product.pk])


def listed(response) -> list:
    assert response.status_code == 200, response.content
    return list(response.context["cl"].result_list)


def reserve(product, quantity):
    order = OrderFactory()
    services.stock_reserve(order=order, lines={product.pk: quantity})
    product.refresh_from_db()
    return order


def stock_state():
    products = list(
        Product.objects.order_by("pk").values_list(
            "pk", "sku", "name", "price", "is_active", "stock_on_hand", "stock_reserved"
        )
    )
    ledger = list(StockMovement.objects.order_by("pk").values_list("pk", "kind", "quantity"))
    return products, ledger


def product_form(**overrides) -> dict:
    data = {
        "sku": "ADM-1",
        "name": "Admin product",
        "description": "",
        "price": "12.50",
        "is_active": "on",
        "low_stock_threshold": "3",
        "_save": "Save",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


# --- Product changelist ----------------------------------------------------------------


def test_the_product_changelist_shows_on_hand_reserved_and_available(admin_client):
    product = ProductFactory(sku="COLS-1", stock=10)
    reserve(product, 3)

    response = admin_client.get(PRODUCTS)

    assert listed(response) == [product]
    html = response.content.decode()
    for header in ("stock on hand", "stock reserved", "available"):
        assert header in html.lower()
    assert '<td class="field-stock_on_hand">10</td>' in html
    assert '<td class="field-stock_reserved">3</td>' in html
    assert '<td class="field-available">7</td>' in html
    assert "COLS-1" in html


def test_the_product_changelist_can_be_sorted_by_available_stock(admin_client):
    plenty = ProductFactory(name="A plenty", stock=9)
    scarce = ProductFactory(name="B scarce", stock=9)
    reserve(scarce, 8)
    # The admin numbers list_display columns after the action checkbox (column 0).
    available_column = 7

    ascending = admin_client.get(PRODUCTS, {"o": str(available_column)})
    descending = admin_client.get(PRODUCTS, {"o": f"-{available_column}"})

    assert listed(ascending) == [scarce, plenty]
    assert listed(descending) == [plenty, scarce]


@pytest.fixture
def stock_levels():
    """Products at various stock levels (threshold 5 unless said)."""
    plenty = ProductFactory(sku="PLENTY", stock=50)
    at_threshold = ProductFactory(sku="AT-THRESHOLD", stock=5)
    under = ProductFactory(sku="UNDER", stock=2)
    empty = ProductFactory(sku="EMPTY")
    held = ProductFactory(sku="HELD", stock=4)
    reserve(held, 4)
    reserved_down = ProductFactory(sku="RESERVED-DOWN", stock=20)
    reserve(reserved_down, 16)  # 4 available: low
    high_threshold = ProductFactory(sku="HIGH-THRESHOLD", stock=30, low_stock_threshold=40)
    return {
        p.sku: p for p in (plenty, at_threshold, under, empty, held, reserved_down, high_threshold)
    }


def test_the_low_stock_filter_shows_products_at_or_under_their_threshold(
    admin_client, stock_levels
):
    skus = sorted(p.sku for p in listed(admin_client.get(PRODUCTS, {"stock": "low"})))

    assert skus == ["AT-THRESHOLD", "EMPTY", "HELD", "HIGH-THRESHOLD", "RESERVED-DOWN", "UNDER"]


def test_the_out_of_stock_filter_shows_products_with_nothing_available(admin_client, stock_levels):
    skus = sorted(p.sku for p in listed(admin_client.get(PRODUCTS, {"stock": "out"})))

    assert skus == ["EMPTY", "HELD"]


def test_without_a_stock_filter_every_product_is_listed(admin_client, stock_levels):
    assert len(listed(admin_client.get(PRODUCTS))) == len(stock_levels)


def test_the_product_changelist_searches_by_sku(admin_client):
    wanted = ProductFactory(sku="FIND-ME-7", name="Lamp")
    ProductFactory(sku="OTHER-1", name="Chair")

    assert listed(admin_client.get(PRODUCTS, {"q": "find-me"})) == [wanted]
    assert listed(admin_client.get(PRODUCTS, {"q": "nothing-like-it"})) == []


def test_the_product_changelist_filters_by_is_active(admin_client):
    active = ProductFactory()
    inactive = ProductFactory(is_active=False)

    assert listed(admin_client.get(PRODUCTS, {"is_active__exact": "1"})) == [active]
    assert listed(admin_client.get(PRODUCTS, {"is_active__exact": "0"})) == [inactive]


# --- Adding and changing products --------------------------------------------------------


def test_the_add_form_creates_a_product_with_no_stock(admin_client):
    response = admin_client.post(PRODUCT_ADD, product_form(stock_on_hand="50", stock_reserved="5"))

    assert response.status_code == 302, response.content
    product = Product.objects.get(sku="ADM-1")
    assert (product.name, product.price, product.is_active) == (
        "Admin product",
        Decimal("12.50"),
        True,
    )
    assert product.low_stock_threshold == 3
    assert (product.stock_on_hand, product.stock_reserved) == (0, 0)
    assert not StockMovement.objects.exists()
    assert response["Location"] in (PRODUCTS, change_url(product))


def test_the_add_form_refuses_a_duplicate_sku(admin_client):
    ProductFactory(sku="ADM-1")

    response = admin_client.post(PRODUCT_ADD, product_form(name="Second"))

    assert response.status_code == 200
    assert "sku" in response.context["adminform"].form.errors
    assert Product.objects.filter(sku="ADM-1").count() == 1


def test_the_add_form_refuses_a_negative_price(admin_client):
    response = admin_client.post(PRODUCT_ADD, product_form(price="-1.00"))

    assert response.status_code == 200
    assert "price" in response.context["adminform"].form.errors
    assert not Product.objects.exists()


def test_the_change_form_shows_stock_and_links_to_adjust_it(admin_client):
    product = ProductFactory(stock=8)

    response = admin_client.get(change_url(product))

    assert response.status_code == 200
    html = response.content.decode()
    assert adjust_url(product) in html
    assert f"{MOVEMENTS}?product__id__exact={product.pk}" in html
    assert "stock_on_hand" not in response.context["adminform"].form.fields


def test_the_change_form_changes_catalogue_fields_but_not_stock(admin_client):
    product = ProductFactory(sku="ADM-1", name="Before", stock=6)

    response = admin_client.post(
        change_url(product),
        product_form(name="After", price="3.00", is_active=None, stock_on_hand="99"),
    )

    assert response.status_code == 302, response.content
    product.refresh_from_db()
    assert (product.name, product.price, product.is_active) == ("After", Decimal("3.00"), False)
    assert (product.stock_on_hand, product.stock_reserved) == (6, 0)
    assert StockMovement.objects.filter(product=product).count() == 1


# --- Adjusting stock -------------------------------------------------------------------


def test_the_adjust_stock_page_renders(admin_client):
    product = ProductFactory(sku="ADJ-1", stock=10)
    reserve(product, 4)

    response = admin_client.get(adjust_url(product))

    assert response.status_code == 200
    assert "admin/inventory/product/adjust_stock.html" in [t.name for t in response.templates]
    html = response.content.decode()
    assert "Adjust stock of ADJ-1" in html
    assert "On hand <strong>10</strong>" in html
    assert "reserved <strong>4</strong>" in html
    assert "available <strong>6</strong>" in html
    assert set(response.context["form"].fields) == {"delta", "reason", "note"}


def test_a_restock_through_the_admin_changes_stock_and_writes_the_ledger(admin_client, superuser):
    product = ProductFactory(sku="ADJ-2", stock=2)

    response = admin_client.post(
        adjust_url(product), {"delta": "5", "reason": "restock", "note": "Pallet 9"}
    )

    assert response.status_code == 302, response.content
    assert response["Location"] == change_url(product)
    product.refresh_from_db()
    assert product.stock_on_hand == 7
    movement = StockMovement.objects.filter(product=product).latest("id")
    assert (movement.kind, movement.quantity, movement.note) == ("restock", 5, "Pallet 9")
    assert movement.actor == superuser
    assert movement.order is None
    assert any("now 7 on hand" in message for message in messages_of(response))


def test_an_admin_adjustment_below_the_reserved_stock_is_a_form_error(admin_client):
    product = ProductFactory(stock=10)
    reserve(product, 6)
    before = stock_state()

    response = admin_client.post(adjust_url(product), {"delta": "-5", "reason": "damage"})

    assert response.status_code == 200
    assert response.context["form"].errors["delta"]
    assert "reserved" in response.context["form"].errors["delta"][0]
    assert stock_state() == before


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"delta": "-2", "reason": "restock"}, "delta"),
        ({"delta": "2", "reason": "damage"}, "delta"),
        ({"delta": "0", "reason": "correction"}, "delta"),
        ({"delta": "x", "reason": "restock"}, "delta"),
        ({"delta": "2", "reason": "reserve"}, "reason"),
    ],
)
def test_a_bad_admin_adjustment_is_a_form_error_and_changes_nothing(admin_client, data, field):
    product = ProductFactory(stock=3)
    before = stock_state()

    response = admin_client.post(adjust_url(product), data)

    assert response.status_code == 200
    assert response.context["form"].errors[field]
    assert stock_state() == before


def test_the_adjust_stock_page_of_an_unknown_product_is_a_404(admin_client):
    response = admin_client.get(reverse("admin:inventory_product_adjust_stock", args=[987654]))

    assert response.status_code == 404


def test_staff_without_the_adjust_stock_permission_cannot_adjust_stock(client):
    product = ProductFactory(stock=3)
    # May change the catalogue, which does not include stock.
    client.force_login(StaffFactory(perms=["inventory.view_product", "inventory.change_product"]))
    before = stock_state()

    response = client.post(adjust_url(product), {"delta": "5", "reason": "restock"})

    assert response.status_code == 403
    assert stock_state() == before


def test_a_view_only_member_sees_no_stock_links_and_a_refusal_is_an_admin_page(client):
    product = ProductFactory(stock=3)
    client.force_login(StaffFactory(perms=["inventory.view_product"]))

    page = client.get(reverse("admin:inventory_product_change", args=[product.pk]))
    refused = client.get(adjust_url(product))

    assert page.status_code == 200
    assert "Adjust stock" not in page.content.decode()
    assert "Stock movements" not in page.content.decode()  # no view_stockmovement either
    assert refused.status_code == 403
    assert refused["Content-Type"].startswith("text/html")
    html = refused.content.decode()
    assert "Permission denied" in html and 'id="site-name"' in html  # the admin's own chrome


def test_a_member_who_may_adjust_stock_sees_the_stock_links(client):
    product = ProductFactory(stock=3)
    client.force_login(
        StaffFactory(
            perms=[
                "inventory.view_product",
                "inventory.adjust_stock",
                "inventory.view_stockmovement",
            ]
        )
    )

    html = client.get(reverse("admin:inventory_product_change", args=[product.pk])).content
    assert b"Adjust stock" in html and b"Stock movements" in html


# --- The stock ledger ------------------------------------------------------------------


def test_the_stock_movement_changelist_lists_the_ledger(admin_client, superuser):
    product = ProductFactory(sku="LEDGER-1", stock=4)
    services.stock_adjust(product=product, delta=-1, reason="damage", actor=superuser)
    order = reserve(product, 2)

    response = admin_client.get(MOVEMENTS)

    rows = listed(response)
    assert [(m.kind, m.quantity) for m in rows] == [("reserve", 2), ("damage", -1), ("restock", 4)]
    html = response.content.decode()
    assert "LEDGER-1" in html
    assert "root@example.com" in html
    assert "system" in html
    assert f"#{order.pk}" in html


def test_the_stock_movement_changelist_filters_by_product(admin_client):
    wanted = ProductFactory(stock=4)
    ProductFactory(stock=9)

    response = admin_client.get(MOVEMENTS, {"product__id__exact": wanted.pk})

    assert [m.product_id for m in listed(response)] == [wanted.pk]


def test_stock_movements_cannot_be_added_in_the_admin(admin_client):
    product = ProductFactory()

    get = admin_client.get(MOVEMENT_ADD)
    post = admin_client.post(
        MOVEMENT_ADD, {"product": product.pk, "kind": "restock", "quantity": "100"}
    )

    assert get.status_code == 403
    assert post.status_code == 403
    assert not StockMovement.objects.exists()
    assert admin_client.get(MOVEMENTS).context["has_add_permission"] is False


def test_a_stock_movement_is_read_only_in_the_admin(admin_client):
    product = ProductFactory(stock=4)
    movement = product.movements.get()
    url = reverse("admin:inventory_stockmovement_change", args=[movement.pk])

    page = admin_client.get(url)
    post = admin_client.post(url, {"product": product.pk, "kind": "damage", "quantity": "-100"})

    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    assert page.context["has_delete_permission"] is False
    assert b'name="_save"' not in page.content
    assert post.status_code == 403
    movement.refresh_from_db()
    assert (movement.kind, movement.quantity) == ("restock", 4)


def test_a_stock_movement_cannot_be_deleted_in_the_admin(admin_client):
    product = ProductFactory(stock=4)
    movement = product.movements.get()
    url = reverse("admin:inventory_stockmovement_delete", args=[movement.pk])

    response = admin_client.post(url, {"post": "yes"})

    assert response.status_code == 403
    assert StockMovement.objects.filter(pk=movement.pk).exists()


# --- Deleting products -----------------------------------------------------------------


def test_the_delete_page_of_an_ordered_product_explains_it_is_protected(admin_client):
    product = ProductFactory(sku="ORDERED-1", stock=3)
    reserve(product, 1)

    response = admin_client.get(delete_url(product))

    assert response.status_code == 200
    protected = [str(item) for item in response.context["protected"]]
    assert any("ORDERED-1" in item and "deactivated" in item for item in protected), protected
    assert b"ORDERED-1" in response.content


def test_an_ordered_product_cannot_be_deleted_through_the_admin(admin_client):
    product = ProductFactory(stock=3)
    reserve(product, 1)
    before = stock_state()

    response = admin_client.post(delete_url(product), {"post": "yes"})

    assert response.status_code == 200  # the page again, naming why it is protected
    assert response.context["protected"]
    assert Product.objects.filter(pk=product.pk).exists()
    assert stock_state() == before


def test_the_bulk_delete_action_does_not_delete_ordered_products(admin_client):
    ordered = ProductFactory(stock=3)
    reserve(ordered, 1)
    never_ordered = ProductFactory()
    before = stock_state()

    response = admin_client.post(
        PRODUCTS,
        {
            "action": "delete_selected",
            "_selected_action": [ordered.pk, never_ordered.pk],
            "post": "yes",
        },
    )

    assert response.status_code == 200  # the confirmation page, naming what is protected
    assert response.context["protected"]
    assert stock_state() == before


def test_a_product_that_never_had_stock_can_be_deleted_through_the_admin(admin_client):
    product = ProductFactory(stock=0)
    kept = ProductFactory()

    page = admin_client.get(delete_url(product))
    response = admin_client.post(delete_url(product), {"post": "yes"})

    assert page.status_code == 200
    assert not page.context["protected"]
    assert not page.context["perms_lacking"]
    assert response.status_code == 302, response.content
    assert list(Product.objects.all()) == [kept]


def test_a_restocked_product_is_kept_with_its_ledger_by_the_admin(admin_client):
    product = ProductFactory(sku="STOCKED-1", stock=3)

    page = admin_client.get(delete_url(product))
    response = admin_client.post(delete_url(product), {"post": "yes"})

    protected = [str(item) for item in page.context["protected"]]
    assert any("STOCKED-1" in item and "deactivated" in item for item in protected), protected
    assert response.status_code == 200  # the page again, naming why it is kept
    assert Product.objects.filter(pk=product.pk).exists()
    assert StockMovement.objects.filter(product=product).count() == 1


def test_the_bulk_delete_action_deletes_products_without_stock_or_orders(admin_client):
    first, second = ProductFactory(), ProductFactory()
    kept = ProductFactory()

    response = admin_client.post(
        PRODUCTS,
        {"action": "delete_selected", "_selected_action": [first.pk, second.pk], "post": "yes"},
    )

    assert response.status_code == 302, response.content
    assert list(Product.objects.all()) == [kept]


def test_the_bulk_delete_action_keeps_restocked_products(admin_client):
    first, second = ProductFactory(stock=1), ProductFactory(stock=0)
    before = stock_state()

    response = admin_client.post(
        PRODUCTS,
        {"action": "delete_selected", "_selected_action": [first.pk, second.pk], "post": "yes"},
    )

    assert response.status_code == 200  # the confirmation page, naming what is kept
    assert response.context["protected"]
    assert Product.objects.count() == 2
    assert stock_state() == before


# --- Who may enter ---------------------------------------------------------------------


@pytest.mark.parametrize("who", ["anonymous", "customer"])
@pytest.mark.parametrize("url", ["products", "adjust", "movements"])
def test_non_staff_are_sent_to_the_login_page(client, who, url):
    product = ProductFactory(stock=2)
    if who == "customer":
        client.force_login(UserFactory())
    path = {"products": PRODUCTS, "adjust": adjust_url(product), "movements": MOVEMENTS}[url]
    before = stock_state()

    response = client.get(path)
    posted = client.post(path, {"delta": "5", "reason": "restock"})

    for answer in (response, posted):
        assert answer.status_code == 302
        assert answer["Location"].startswith(reverse("admin:login"))
    assert stock_state() == before
