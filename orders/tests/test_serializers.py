"""The order's hand-built representation (the API's hottest read) against
DRF's own rendering of the same declared fields: they must not drift."""

from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework import serializers

from accounts.tests.factories import UserFactory
from inventory.tests.factories import ProductFactory
from orders import selectors, services
from orders.api.serializers import OrderSerializer
from orders.statuses import OrderStatus
from orders.tests.factories import place_order

pytestmark = pytest.mark.django_db


def drf_rendering(order) -> dict:
    return serializers.ModelSerializer.to_representation(OrderSerializer(), order)


@pytest.fixture
def orders():
    customer = UserFactory(email="casey@example.com")
    pen = ProductFactory(price=Decimal("19.99"), stock=50)
    mug = ProductFactory(price=Decimal("0.10"), stock=50)
    placed = place_order(customer, (pen, 3), (mug, 7), shipping_address="1 Mill Lane", notes="é")
    moved = place_order(customer, (mug, 1))
    services.order_transition(order=moved, to_status=OrderStatus.PROCESSING, actor=None)
    return [placed, moved]


@pytest.mark.parametrize("zone", ["UTC", "Pacific/Kiritimati", "America/St_Johns"])
def test_the_order_representation_is_drfs_field_for_field(orders, zone, settings):
    settings.TIME_ZONE = zone
    with timezone.override(zone):
        for order in selectors.order_list(user=orders[0].customer):
            fast, reference = OrderSerializer(order).data, drf_rendering(order)
            assert list(fast) == list(reference)
            assert fast == reference


def test_a_new_order_is_shown_as_it_will_be_read_back(orders):
    placed = orders[0]  # as order_place returned it, lines attached
    stored = selectors.order_list(user=placed.customer).get(pk=placed.pk)
    assert OrderSerializer(placed).data == drf_rendering(stored)
