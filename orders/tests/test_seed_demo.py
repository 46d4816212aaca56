import io

import pytest
from django.core.management import call_command

from accounts.models import User
from inventory.models import Product
from inventory.tests.test_stock_services import assert_ledger_explains
from orders.management.commands.seed_demo import DEMO_CUSTOMERS, DEMO_PRODUCTS

pytestmark = pytest.mark.django_db


def test_seed_demo_loads_products_with_stock_and_customers_who_can_log_in(client):
    call_command("seed_demo", stdout=io.StringIO())
    assert Product.objects.count() == len(DEMO_PRODUCTS)
    for product in Product.objects.all():
        assert_ledger_explains(product)
    assert Product.objects.filter(stock_on_hand__gt=0).count() >= 10
    assert Product.objects.filter(is_active=False).exists()
    customer = User.objects.get(email=DEMO_CUSTOMERS[0][0])
    assert not customer.is_staff
    response = client.post(
        "/api/v1/auth/token/",
        {"email": customer.email, "password": "customer-demo-password"},
        content_type="application/json",
    )
    assert response.status_code == 200


def test_seed_demo_is_safe_to_run_twice():
    call_command("seed_demo", stdout=io.StringIO())
    stock = dict(Product.objects.values_list("sku", "stock_on_hand"))
    call_command("seed_demo", stdout=io.StringIO())
    assert dict(Product.objects.values_list("sku", "stock_on_hand")) == stock
    assert User.objects.count() == len(DEMO_CUSTOMERS)
