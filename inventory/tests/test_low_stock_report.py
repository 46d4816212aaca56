"""The daily low-stock report mailed to staff."""

import pytest
from django.core import mail

from accounts.tests.factories import StaffFactory, UserFactory
from inventory import tasks
from inventory.reports import REPORT_MAX_ROWS
from inventory.tests.factories import ProductFactory

pytestmark = pytest.mark.django_db


def test_staff_get_the_products_at_or_under_their_threshold():
    staff = StaffFactory(email="boss@example.com")
    StaffFactory(email="gone@example.com", is_active=False)
    UserFactory(email="customer@example.com")
    ProductFactory(sku="AT-5", name="At threshold", stock=5, low_stock_threshold=5)
    ProductFactory(sku="UNDER", name="Under", stock=1, low_stock_threshold=5)
    ProductFactory(sku="PLENTY", stock=50, low_stock_threshold=5)
    ProductFactory(sku="RETIRED", stock=0, low_stock_threshold=5, is_active=False)

    assert tasks.send_low_stock_report.apply().get() == 2

    (message,) = mail.outbox
    assert message.to == [staff.email]
    assert message.subject.startswith("Low stock: 2 products at or under threshold")
    lines = message.body.splitlines()
    # The lowest first, with the figures staff act on.
    under, at = (lines.index(line) for line in lines if line.startswith(("UNDER |", "AT-5 |")))
    assert lines[under] == "UNDER | Under | 1 | 0 | 1 | 5"
    assert lines[at] == "AT-5 | At threshold | 5 | 0 | 5 | 5"
    assert under < at
    assert "PLENTY" not in message.body and "RETIRED" not in message.body


def test_reserved_stock_counts_against_the_threshold(settings):
    settings.LOW_STOCK_REPORT_RECIPIENTS = ["stock@example.com"]
    product = ProductFactory(sku="HELD", stock=8, low_stock_threshold=5)
    product.stock_reserved = 4  # available 4
    product.save(update_fields=["stock_reserved"])
    assert tasks.send_low_stock_report.apply().get() == 1
    assert mail.outbox[0].to == ["stock@example.com"]


def test_nothing_low_sends_nothing():
    StaffFactory()
    ProductFactory(stock=50, low_stock_threshold=5)
    assert tasks.send_low_stock_report.apply().get() == 0
    assert mail.outbox == []


def test_a_second_run_the_same_day_sends_nothing_unless_forced():
    StaffFactory()
    ProductFactory(stock=0)
    assert tasks.send_low_stock_report.apply().get() == 1
    assert tasks.send_low_stock_report.apply().get() == 0
    assert len(mail.outbox) == 1
    assert tasks.send_low_stock_report.apply(kwargs={"force": True}).get() == 1
    assert len(mail.outbox) == 2


def test_a_long_list_is_cut_and_the_rest_counted(settings):
    settings.LOW_STOCK_REPORT_RECIPIENTS = ["stock@example.com"]
    ProductFactory.create_batch(REPORT_MAX_ROWS + 3, stock=0)
    assert tasks.send_low_stock_report.apply().get() == REPORT_MAX_ROWS + 3
    body = mail.outbox[0].body
    assert body.count(" | 0 | 0 | 0 | ") == REPORT_MAX_ROWS
    assert "... and 3 more." in body
