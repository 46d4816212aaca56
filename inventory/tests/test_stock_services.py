from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.db.models import F

from inventory import services
from inventory.exceptions import InsufficientStock, InvalidAdjustment, ProductUnavailable
from inventory.models import Product, StockMovement
from orders.tests.factories import OrderFactory

from .factories import ProductFactory
from .helpers import assert_ledger_explains

pytestmark = pytest.mark.django_db

Kind = StockMovement.Kind


# --- Database constraints ----------------------------------------------------------


def test_database_refuses_more_reserved_than_on_hand():
    product = ProductFactory(stock=3)
    with pytest.raises(IntegrityError), transaction.atomic():
        Product.objects.filter(pk=product.pk).update(stock_reserved=F("stock_on_hand") + 1)


def test_database_refuses_negative_stock():
    product = ProductFactory(stock=3)
    with pytest.raises(IntegrityError), transaction.atomic():
        Product.objects.filter(pk=product.pk).update(stock_on_hand=F("stock_on_hand") - 4)


def test_database_refuses_negative_price():
    product = ProductFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Product.objects.filter(pk=product.pk).update(price=Decimal("-0.01"))


def test_database_refuses_duplicate_sku():
    ProductFactory(sku="DUP-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        Product.objects.create(sku="DUP-1", name="Again", price=Decimal("1.00"))


def test_service_reports_a_duplicate_sku_that_slipped_past_validation():
    ProductFactory(sku="DUP-2")
    with pytest.raises(InvalidAdjustment) as raised:
        services.product_create(sku="DUP-2", name="Again", price=Decimal("1.00"))
    assert (raised.value.code, raised.value.attr) == ("unique", "sku")
    assert Product.objects.filter(sku="DUP-2").count() == 1


# --- Adjustments -------------------------------------------------------------------


def test_restock_adds_to_on_hand_and_writes_a_movement(staff_user):
    product = ProductFactory()
    movement = services.stock_adjust(
        product=product, delta=7, reason="restock", actor=staff_user, note="Pallet 4"
    )
    assert (product.stock_on_hand, product.stock_reserved) == (7, 0)
    assert (movement.kind, movement.quantity, movement.actor, movement.note) == (
        Kind.RESTOCK,
        7,
        staff_user,
        "Pallet 4",
    )
    assert_ledger_explains(product)


@pytest.mark.parametrize(
    ("reason", "delta"),
    [("restock", -1), ("return", -2), ("damage", 3), ("correction", 0), ("restock", 0)],
)
def test_adjustment_with_the_wrong_sign_or_zero_is_refused(reason, delta, staff_user):
    product = ProductFactory(stock=5)
    with pytest.raises(InvalidAdjustment) as raised:
        services.stock_adjust(product=product, delta=delta, reason=reason, actor=staff_user)
    assert raised.value.attr == "delta"
    product.refresh_from_db()
    assert product.stock_on_hand == 5
    assert product.movements.count() == 1


@pytest.mark.parametrize("reason", ["reserve", "release", "ship", "gift"])
def test_only_staff_reasons_adjust_stock(reason, staff_user):
    product = ProductFactory(stock=5)
    with pytest.raises(InvalidAdjustment) as raised:
        services.stock_adjust(product=product, delta=1, reason=reason, actor=staff_user)
    assert raised.value.attr == "reason"


def test_correction_and_damage_may_lower_stock_down_to_what_is_reserved(staff_user):
    product = ProductFactory(stock=10)
    services.stock_reserve(order=OrderFactory(), lines={product.pk: 4})
    services.stock_adjust(product=product, delta=-3, reason="damage", actor=staff_user)
    services.stock_adjust(product=product, delta=-3, reason="correction", actor=staff_user)
    assert (product.stock_on_hand, product.stock_reserved) == (4, 4)
    with pytest.raises(InsufficientStock) as raised:
        services.stock_adjust(product=product, delta=-1, reason="damage", actor=staff_user)
    assert raised.value.attr == "delta"
    assert product.sku in raised.value.detail
    assert_ledger_explains(product)
    assert product.stock_on_hand == 4


def test_adjustment_cannot_overflow_the_stock_column(staff_user):
    product = ProductFactory(stock=10)
    with pytest.raises(InvalidAdjustment):
        services.stock_adjust(
            product=product, delta=2_147_483_647, reason="restock", actor=staff_user
        )
    product.refresh_from_db()
    assert product.stock_on_hand == 10


# --- Reservations ------------------------------------------------------------------


def test_reserve_holds_stock_for_every_line():
    mug, tee = ProductFactory(stock=5), ProductFactory(stock=3)
    order = OrderFactory()
    movements = services.stock_reserve(order=order, lines={mug.pk: 2, tee.pk: 3})
    assert {(m.product_id, m.kind, m.quantity, m.order_id) for m in movements} == {
        (mug.pk, Kind.RESERVE, 2, order.pk),
        (tee.pk, Kind.RESERVE, 3, order.pk),
    }
    mug.refresh_from_db()
    tee.refresh_from_db()
    assert (mug.stock_reserved, mug.stock_available) == (2, 3)
    assert (tee.stock_reserved, tee.stock_available) == (3, 0)
    assert_ledger_explains(mug)
    assert_ledger_explains(tee)


def test_reserve_is_all_or_nothing():
    plenty, scarce = ProductFactory(stock=50), ProductFactory(stock=1)
    with pytest.raises(InsufficientStock) as raised:
        services.stock_reserve(order=OrderFactory(), lines={plenty.pk: 5, scarce.pk: 2})
    assert raised.value.product_id == scarce.pk
    assert scarce.sku in raised.value.detail
    assert raised.value.status_code == 409
    assert raised.value.code == "insufficient_stock"
    assert Product.objects.get(pk=plenty.pk).stock_reserved == 0
    assert Product.objects.get(pk=scarce.pk).stock_reserved == 0
    assert not StockMovement.objects.filter(kind=Kind.RESERVE).exists()


def test_reserve_counts_what_other_orders_already_hold():
    product = ProductFactory(stock=5)
    services.stock_reserve(order=OrderFactory(), lines={product.pk: 4})
    with pytest.raises(InsufficientStock):
        services.stock_reserve(order=OrderFactory(), lines={product.pk: 2})
    services.stock_reserve(order=OrderFactory(), lines={product.pk: 1})
    product.refresh_from_db()
    assert (product.stock_reserved, product.stock_available) == (5, 0)


def test_reserve_refuses_unknown_and_inactive_products():
    inactive = ProductFactory(stock=5, is_active=False)
    active = ProductFactory(stock=5)
    for product_id in (inactive.pk, inactive.pk + 1000):
        with pytest.raises(ProductUnavailable) as raised:
            services.stock_reserve(order=OrderFactory(), lines={active.pk: 1, product_id: 1})
        assert raised.value.product_id == product_id
    assert Product.objects.get(pk=active.pk).stock_reserved == 0


# --- Release and consume -----------------------------------------------------------


def test_release_gives_back_the_whole_reservation_once():
    mug, tee = ProductFactory(stock=5), ProductFactory(stock=5)
    order = OrderFactory()
    services.stock_reserve(order=order, lines={mug.pk: 2, tee.pk: 1})
    released = services.stock_release(order=order, note="cancelled")
    assert sorted((m.product_id, m.quantity) for m in released) == [(mug.pk, -2), (tee.pk, -1)]
    assert services.stock_release(order=order) == []
    for product in (mug, tee):
        product.refresh_from_db()
        assert (product.stock_on_hand, product.stock_reserved) == (5, 0)
        assert_ledger_explains(product)


def test_release_leaves_other_orders_reservations_alone():
    product = ProductFactory(stock=5)
    kept, cancelled = OrderFactory(), OrderFactory()
    services.stock_reserve(order=kept, lines={product.pk: 2})
    services.stock_reserve(order=cancelled, lines={product.pk: 3})
    services.stock_release(order=cancelled)
    product.refresh_from_db()
    assert product.stock_reserved == 2


def test_consume_takes_shipped_stock_off_hand_and_out_of_reserve_once():
    product = ProductFactory(stock=10)
    order = OrderFactory()
    services.stock_reserve(order=order, lines={product.pk: 4})
    shipped = services.stock_consume(order=order)
    assert [(m.kind, m.quantity) for m in shipped] == [(Kind.SHIP, -4)]
    assert services.stock_consume(order=order) == []
    assert services.stock_release(order=order) == []
    product.refresh_from_db()
    assert (product.stock_on_hand, product.stock_reserved) == (6, 0)
    assert_ledger_explains(product)


def test_ledger_sums_to_stock_after_a_mix_of_changes(staff_user):
    product = ProductFactory(stock=20)
    first, second = OrderFactory(), OrderFactory()
    services.stock_reserve(order=first, lines={product.pk: 5})
    services.stock_reserve(order=second, lines={product.pk: 7})
    services.stock_adjust(product=product, delta=-2, reason="damage", actor=staff_user)
    services.stock_consume(order=first)
    services.stock_adjust(product=product, delta=1, reason="return", actor=staff_user)
    services.stock_release(order=second)
    product.refresh_from_db()
    assert (product.stock_on_hand, product.stock_reserved) == (14, 0)
    assert_ledger_explains(product)


# --- Catalogue ---------------------------------------------------------------------


def test_a_product_that_was_ordered_cannot_be_deleted():
    product = ProductFactory(stock=2)
    order = OrderFactory()
    services.stock_reserve(order=order, lines={product.pk: 1})
    services.stock_release(order=order)
    with pytest.raises(services.ProductInUse):
        services.product_delete(product=product)
    assert Product.objects.filter(pk=product.pk).exists()


def test_a_product_that_never_had_stock_is_deleted():
    product = ProductFactory(stock=0)
    services.product_delete(product=product)
    assert not Product.objects.filter(pk=product.pk).exists()


def test_a_stocked_product_that_was_never_ordered_keeps_its_ledger():
    product = ProductFactory(stock=2)
    with pytest.raises(services.ProductInUse):
        services.product_delete(product=product)
    assert StockMovement.objects.filter(product=product).count() == 1


def test_the_database_refuses_to_delete_a_product_with_movements():
    from django.db.models import ProtectedError

    product = ProductFactory(stock=2)
    with pytest.raises(ProtectedError):
        Product.objects.filter(pk=product.pk).delete()


def test_update_refuses_stock_fields():
    product = ProductFactory(stock=2)
    with pytest.raises(ValueError, match="stock_on_hand"):
        services.product_update(product=product, data={"stock_on_hand": 99})
