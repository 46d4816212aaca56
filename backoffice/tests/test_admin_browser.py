"""The back office end to end, in a real browser: headless Chromium, driven
by Playwright, against the app served by a live server on a real database.

A staff member logs in for the first time with two-factor on (SPEC §11),
so sets up an authenticator on the enrolment page (the test computes the
code from the secret shown there) and sees the backup codes. Then they
filter the orders by status, move two pending orders to processing and then
to shipped with the list's actions, read the messages, see the on-hand stock
drop, restock a product through the adjustment form, and open the dashboard
(its screenshot is the README's: `ADMIN_SCREENSHOT=docs/admin-dashboard.png`
writes it there).

Needs Debian's `chromium` (/usr/bin/chromium, or $CHROMIUM); skipped without
it, except in CI, where `.ci/run` installs it and REQUIRE_BROWSER=1 makes its
absence an error.
"""

import io
import os
import re
from base64 import b32decode
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connections
from django_otp.oath import totp

from accounts.tests.factories import PASSWORD, StaffFactory, UserFactory
from inventory.models import Product
from inventory.tests.factories import ProductFactory
from orders.tests.factories import place_order

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
def page(monkeypatch):
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the
    # test makes between browser steps are still synchronous and safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        # 1366 px: the most common laptop width; nothing may overflow its box there.
        context = browser.new_context(viewport={"width": 1366, "height": 900})
        context.set_default_timeout(10_000)
        yield context.new_page()
        browser.close()
        # While Playwright's loop runs, Django hands this thread's ORM calls a
        # connection of their own (a context of the loop's): close it here, in
        # that context, or it outlives the test database.
        connections.close_all()


# Boxes of the admin whose content is wider than they are (cut off or spilling).
OVERFLOWING = """() => [...document.querySelectorAll('.results, .module, #content-main')]
    .filter(el => el.scrollWidth > el.clientWidth + 1)
    .map(el => `${el.id || el.className}: ${el.scrollWidth} > ${el.clientWidth}`)"""


def on_hand(sku: str) -> int:
    return Product.objects.get(sku=sku).stock_on_hand


def code_from_the_app(secret: str) -> str:
    """The code an authenticator app set up with `secret` shows now."""
    return f"{totp(b32decode(secret)):06d}"


def test_a_staff_member_runs_the_day_from_the_admin(page, live_server, tmp_path, settings):
    from playwright.sync_api import expect

    settings.ADMIN_REQUIRE_2FA = True

    # A month of demo history for the dashboard, and today's two orders to ship.
    call_command("seed_demo", orders=300, seed=7, not_production=True, stdout=io.StringIO())
    staff = StaffFactory(email="staff@example.com", is_superuser=True)
    lamp = ProductFactory(sku="LAMP-01", name="Desk lamp", stock=40, low_stock_threshold=5)
    ProductFactory(sku="BULB-02", name="Spare bulb", stock=3, low_stock_threshold=10)
    customer = UserFactory(email="casey@example.com")
    orders = [place_order(customer, (lamp, 2)), place_order(customer, (lamp, 3))]
    assert on_hand("LAMP-01") == 40

    # Log in: no device yet, so the password leads to the enrolment page.
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", staff.email)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#qr-code svg")).to_be_visible()
    secret = page.locator("#totp-secret").inner_text().strip()
    page.fill("#enrol-form #id_otp_token", code_from_the_app(secret))
    page.click("#enrol-form input[type=submit]")
    expect(page.locator("#backup-codes li")).to_have_count(10)
    page.click("#continue")
    expect(page.locator("#dashboard")).to_be_visible()

    # Filter the orders by status.
    page.goto(f"{live_server.url}/admin/orders/order/")
    page.locator("#changelist-filter").get_by_role("link", name="Pending", exact=True).click()
    expect(page).to_have_url(re.compile(r"status__exact=pending"))
    expect(page.locator("#changelist-filter li.selected", has_text="Pending")).to_be_visible()

    def run_action(action: str, order_ids):
        for order_id in order_ids:
            page.check(f"input[name=_selected_action][value='{order_id}']")
        page.select_option("select[name=action]", action)
        page.click("button[name=index]")
        return page.locator("ul.messagelist li")

    # Mark the two pending orders processing, then shipped.
    ids = [order.pk for order in orders]
    numbers = ", ".join(f"#{order_id}" for order_id in sorted(ids))
    messages = run_action("mark_processing", ids)
    expect(messages).to_have_text([f"Moved 2 orders to processing: {numbers}."])
    page.locator("#changelist-filter").get_by_role("link", name="Processing", exact=True).click()
    messages = run_action("mark_shipped", ids)
    expect(messages).to_have_text([f"Moved 2 orders to shipped: {numbers}."])

    # Shipping took the five lamps off the shelf.
    assert on_hand("LAMP-01") == 35
    page.goto(f"{live_server.url}/admin/inventory/product/")
    assert page.evaluate(OVERFLOWING) == []
    page.goto(f"{live_server.url}/admin/inventory/product/?q=LAMP-01")
    row = page.locator("#result_list tbody tr", has_text="LAMP-01")
    expect(row.locator("td.field-stock_on_hand")).to_have_text("35")

    # Restock through the adjustment form.
    row.get_by_role("link", name="LAMP-01").click()
    page.get_by_role("link", name="Adjust stock").first.click()
    page.fill("#id_delta", "12")
    page.select_option("#id_reason", "restock")
    page.fill("#id_note", "Delivery from the supplier")
    page.click("input[name=_adjust]")
    expect(page.locator("ul.messagelist li.success")).to_contain_text(
        "LAMP-01: restock +12; now 47 on hand, 47 available."
    )
    assert on_hand("LAMP-01") == 47

    # The dashboard: today's orders by status, the revenue chart, low stock.
    page.goto(f"{live_server.url}/admin/")
    today = page.locator("#orders-today")
    expect(today.locator("tr.status-shipped td")).to_have_text("2")
    expect(page.locator("#revenue-chart svg rect.bar")).to_have_count(30)
    expect(page.locator("#low-stock tbody tr", has_text="BULB-02")).to_contain_text("Spare bulb")
    assert page.evaluate(OVERFLOWING) == []
    screenshot = Path(os.environ.get("ADMIN_SCREENSHOT") or tmp_path / "dashboard.png")
    page.screenshot(path=str(screenshot))
    assert screenshot.stat().st_size > 10_000
