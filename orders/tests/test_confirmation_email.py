from decimal import Decimal

import pytest
from django.template.loader import render_to_string

from accounts.tests.factories import UserFactory
from inventory.tests.factories import ProductFactory
from orders import services

pytestmark = pytest.mark.django_db


def test_confirmation_email_lists_the_lines_and_the_total_as_placed():
    customer = UserFactory(first_name="Ann")
    mug = ProductFactory(sku="MUG-9", name="Mug & Co", price=Decimal("12.50"), stock=5)
    order = services.order_place(
        customer=customer,
        items=[{"product_id": mug.pk, "quantity": 2}],
        shipping_address="1 Main St\nSpringfield",
    )
    body = render_to_string("emails/order_confirmation.txt", {"order": order})
    subject = render_to_string("emails/order_confirmation_subject.txt", {"order": order})
    assert subject.strip() == f"Your order #{order.pk} is being processed"
    assert "Hello Ann," in body
    assert "2 x Mug & Co (MUG-9) at 12.50 USD = 25.00 USD" in body
    assert "Total: 25.00 USD" in body
    assert "1 Main St\nSpringfield" in body
