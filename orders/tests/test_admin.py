"""Orders in the admin back office (SPEC §8): the list, search and filters,
the read-only order page, the actions through the orders service, the CSV
export and the permissions that gate them."""

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import StaffFactory, UserFactory
from core.testing import messages_of
from inventory.models import StockMovement
from inventory.tests.factories import ProductFactory
from inventory.tests.helpers import assert_ledger_explains
from orders import admin as order_admin
from orders import services
from orders.models import Order, OrderEmail, OrderEvent
from orders.statuses import OrderStatus
from orders.tests.factories import place_order

pytestmark = pytest.mark.django_db

ORDERS = reverse("admin:orders_order_changelist")
EXPORT = reverse("admin:orders_order_export")

S = OrderStatus


def change_url(order) -> str:
    return reverse("admin:orders_order_change", args=[order.pk])


def move_url(order, to_status) -> str:
    return reverse("admin:orders_order_move", args=[order.pk, to_status])


def listed(response) -> list[int]:
    assert response.status_code == 200, response.content[:500]
    return [order.pk for order in response.context["cl"].result_list]


def change_form_data(client, order, **changes) -> dict:
    """What the order page's form posts (inline management forms included),
    with `changes` applied."""
    response = client.get(change_url(order))
    data = {"shipping_address": order.shipping_address, "notes": order.notes}
    for inline in response.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data.update(
            {f"{management.prefix}-{name}": value for name, value in management.initial.items()}
        )
    return {**data, **changes}


def act(client, action, orders, **extra):
    """Run a changelist action on `orders`, following the redirect."""
    return client.post(
        ORDERS,
        {"action": action, "_selected_action": [order.pk for order in orders], **extra},
        follow=True,
    )


def csv_rows(response) -> list[dict]:
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment; filename=")
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def staff_with(*codenames, **kwargs):
    """A staff user holding only the named `orders` permissions."""
    user = StaffFactory(perms=[], **kwargs)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="orders", codename__in=codenames)
    )
    return user


@pytest.fixture
def mug():
    return ProductFactory(sku="MUG-001", name="Enamel mug", price=Decimal("12.50"), stock=50)


@pytest.fixture
def cap():
    return ProductFactory(sku="CAP-001", name="Cap", price=Decimal("15.00"), stock=50)


@pytest.fixture
def alice():
    return UserFactory(email="alice@example.com")


@pytest.fixture
def pending(mug, cap, alice):
    """Two pending orders of Alice's: 2 mugs + 1 cap, and 3 mugs."""
    return [place_order(alice, (mug, 2), (cap, 1)), place_order(alice, (mug, 3))]


def status_of(order) -> str:
    order.refresh_from_db()
    return order.status


# --- The list ------------------------------------------------------------------


def test_the_order_list_shows_customer_status_total_items_and_creation(admin_client, pending):
    response = admin_client.get(ORDERS)
    assert listed(response) == [pending[1].pk, pending[0].pk]  # newest first
    html = response.content.decode()
    for text in (
        f"#{pending[0].pk}",
        "alice@example.com",
        "Pending",
        f"40.00 {settings.CURRENCY}",
        f"37.50 {settings.CURRENCY}",
    ):
        assert text in html
    rows = {order.pk: order for order in response.context["cl"].result_list}
    assert rows[pending[0].pk].units == 3
    assert rows[pending[1].pk].units == 3


def test_the_order_list_costs_the_same_queries_for_three_orders_as_for_thirty(
    admin_client, mug, alice
):
    def queries_for_the_list():
        with CaptureQueriesContext(admin_client_connection()) as queries:
            assert admin_client.get(ORDERS).status_code == 200
        return len(queries)

    for _ in range(3):
        place_order(UserFactory(), (mug, 1))
    few = queries_for_the_list()
    for _ in range(27):
        place_order(UserFactory(), (mug, 1))
    assert queries_for_the_list() == few


def admin_client_connection():
    from django.db import connection

    return connection


def test_the_order_list_filters_by_status(admin_client, pending, alice, mug):
    services.order_transition(order=pending[0], to_status=S.PROCESSING, actor=None)
    assert listed(admin_client.get(ORDERS, {"status__exact": "processing"})) == [pending[0].pk]
    assert listed(admin_client.get(ORDERS, {"status__exact": "pending"})) == [pending[1].pk]


def test_the_order_list_filters_by_date(admin_client, pending):
    old = pending[0]
    Order.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=40))
    today = timezone.localdate()
    by_day = {
        "created_at__year": today.year,
        "created_at__month": today.month,
        "created_at__day": today.day,
    }
    assert listed(admin_client.get(ORDERS, by_day)) == [pending[1].pk]
    cl = admin_client.get(ORDERS).context["cl"]
    date_filter = next(spec for spec in cl.filter_specs if spec.field_path == "created_at")
    past_week = dict(date_filter.links)["Past 7 days"]
    assert listed(admin_client.get(ORDERS, past_week)) == [pending[1].pk]


def test_the_date_hierarchy_offers_the_days_between_the_first_and_last_order(admin_client, pending):
    first = timezone.localtime().replace(day=1, hour=12)
    Order.objects.filter(pk=pending[0].pk).update(created_at=first)
    with CaptureQueriesContext(admin_client_connection()) as queries:
        response = admin_client.get(ORDERS)
    hierarchy = response.content.decode().split('class="toplinks"')[1].split("</nav>")[0]
    # The orders are all in this month, so the hierarchy opens at its days:
    # every day from the first order's to today's, found without reading the rows.
    today = timezone.localdate()
    assert hierarchy.count("created_at__day=") == today.day
    assert f"created_at__day={today.day}" in hierarchy
    assert not [q["sql"] for q in queries if "DISTINCT" in q["sql"]]


@pytest.mark.parametrize("term", ["{pk}", "#{pk}", " {pk} "])
def test_search_finds_an_order_by_its_number(admin_client, pending, term):
    found = admin_client.get(ORDERS, {"q": term.format(pk=pending[0].pk)})
    assert listed(found) == [pending[0].pk]


@pytest.mark.parametrize("term", ["alice@example.com", "ALICE@example.com", "alice", "@example"])
def test_search_finds_orders_by_customer_email_or_part_of_it(admin_client, pending, mug, term):
    place_order(UserFactory(email="bob@shop.test"), (mug, 1))
    assert sorted(listed(admin_client.get(ORDERS, {"q": term}))) == sorted(o.pk for o in pending)


@pytest.mark.parametrize("term", ["CAP-001", "cap-001"])
def test_search_finds_orders_by_sku(admin_client, pending, term):
    assert listed(admin_client.get(ORDERS, {"q": term})) == [pending[0].pk]


@pytest.mark.parametrize("term", ["nothing-like-this", "#999999", "9" * 40, "%", "'", "²", "#١٢"])
def test_search_with_no_match_lists_nothing(admin_client, pending, term):
    assert listed(admin_client.get(ORDERS, {"q": term})) == []


def test_the_list_sorts_only_on_indexed_columns(admin_client, pending):
    cl = admin_client.get(ORDERS).context["cl"]
    assert set(cl.sortable_by) == {"number", "created_at"}
    oldest_first = admin_client.get(ORDERS, {"o": "6"})  # created_at, ascending
    assert listed(oldest_first) == [pending[0].pk, pending[1].pk]


# --- The order page --------------------------------------------------------------


def test_the_order_page_shows_lines_history_and_emails(admin_client, pending, superuser):
    order = pending[0]
    services.order_transition(order=order, to_status=S.PROCESSING, actor=superuser, note="Paid")
    OrderEmail.objects.create(order=order, kind=OrderEmail.Kind.CONFIRMATION)
    response = admin_client.get(change_url(order))
    assert response.status_code == 200
    html = response.content.decode()
    for text in ("MUG-001", "CAP-001", "Enamel mug", "12.50", "Paid", "root@example.com"):
        assert text in html
    assert "Order confirmation" in html and "queued, next try" in html
    inlines = {
        formset.opts.model.__name__: formset
        for formset in response.context["inline_admin_formsets"]
    }
    assert set(inlines) == {"OrderLine", "OrderEvent", "OrderEmail"}
    for inline in inlines.values():
        assert not inline.has_add_permission
        assert not inline.has_change_permission
        assert not inline.has_delete_permission


def test_the_order_page_changes_delivery_details_through_the_service(
    admin_client, pending, superuser
):
    order = pending[0]
    data = change_form_data(
        admin_client,
        order,
        shipping_address="1 Harbour Road",
        notes="Leave at the door",
        # Not fields of the form: ignored.
        status="delivered",
        total="0.01",
        customer=superuser.pk,
    )
    response = admin_client.post(change_url(order), data)
    assert response.status_code == 302, response.content[:2000]
    order.refresh_from_db()
    assert (order.shipping_address, order.notes) == ("1 Harbour Road", "Leave at the door")
    assert (order.status, order.total, order.customer.email) == (
        S.PENDING,
        Decimal("40.00"),
        "alice@example.com",
    )
    event = order.events.get(type=OrderEvent.Type.UPDATED)
    assert event.actor == superuser
    assert event.data == {"fields": ["notes", "shipping_address"]}


def test_status_totals_and_lines_are_read_only_on_the_order_page(admin_client, pending):
    form = admin_client.get(change_url(pending[0])).context["adminform"].form
    assert set(form.fields) == {"shipping_address", "notes"}


def test_orders_cannot_be_added_or_deleted_in_the_admin(admin_client, pending):
    assert admin_client.get(reverse("admin:orders_order_add")).status_code == 403
    delete = reverse("admin:orders_order_delete", args=[pending[0].pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert Order.objects.count() == 2
    actions = admin_client.get(ORDERS).context["action_form"].fields["action"].choices
    assert "delete_selected" not in dict(actions)


def test_the_order_page_offers_the_moves_staff_may_make(admin_client, pending):
    response = admin_client.get(change_url(pending[0]))
    assert [status for status, _ in response.context["moves"]] == [S.PROCESSING, S.CANCELLED]
    assert move_url(pending[0], "processing") in response.content.decode()


def test_a_move_from_the_order_page_is_confirmed_then_made(admin_client, pending, superuser):
    order = pending[0]
    confirm = admin_client.get(move_url(order, "cancelled"))
    assert confirm.status_code == 200
    assert "Yes, move to cancelled" in confirm.content.decode()
    assert status_of(order) == S.PENDING  # a GET moves nothing
    response = admin_client.post(move_url(order, "cancelled"), {"note": "Customer called"})
    assert response.status_code == 302
    assert messages_of(response) == [f"Order #{order.pk} moved to cancelled."]
    assert status_of(order) == S.CANCELLED
    event = order.events.latest("id")
    assert (event.actor, event.note) == (superuser, "Customer called")
    assert_ledger_explains(order.lines.get(sku="MUG-001").product)


def test_a_refused_move_from_the_order_page_says_why_and_changes_nothing(admin_client, pending):
    order = pending[0]
    response = admin_client.post(move_url(order, "delivered"))
    assert messages_of(response) == [
        f"Order #{order.pk} was not moved: A pending order cannot be moved to delivered."
    ]
    assert status_of(order) == S.PENDING


def test_a_move_to_an_unknown_status_is_a_404(admin_client, pending):
    assert admin_client.post(move_url(pending[0], "teleported")).status_code == 404


# --- Actions -----------------------------------------------------------------------


def test_mark_processing_moves_pending_orders_as_the_staff_member(admin_client, pending, superuser):
    response = act(admin_client, "mark_processing", pending)
    numbers = ", ".join(f"#{order.pk}" for order in pending)
    assert messages_of(response) == [f"Moved 2 orders to processing: {numbers}."]
    for order in pending:
        assert status_of(order) == S.PROCESSING
        event = order.events.latest("id")
        assert (event.from_status, event.to_status, event.actor) == (
            S.PENDING,
            S.PROCESSING,
            superuser,
        )


def test_mark_shipped_consumes_the_reserved_stock(admin_client, pending, mug):
    act(admin_client, "mark_processing", pending)
    response = act(admin_client, "mark_shipped", pending)
    assert messages_of(response)[0].startswith("Moved 2 orders to shipped")
    mug.refresh_from_db()
    assert (mug.stock_on_hand, mug.stock_reserved) == (45, 0)
    assert_ledger_explains(mug)
    assert StockMovement.objects.filter(product=mug, kind=StockMovement.Kind.SHIP).count() == 2


def test_mark_delivered_moves_shipped_orders(admin_client, pending):
    act(admin_client, "mark_processing", pending)
    act(admin_client, "mark_shipped", pending)
    act(admin_client, "mark_delivered", pending)
    assert [status_of(order) for order in pending] == [S.DELIVERED, S.DELIVERED]


def test_an_action_reports_each_order_that_could_not_move_and_why(admin_client, pending):
    moved, stays = pending
    services.order_transition(order=moved, to_status=S.PROCESSING, actor=None)
    response = act(admin_client, "mark_shipped", pending)
    assert messages_of(response) == [
        f"Moved 1 order to shipped: #{moved.pk}.",
        f"Order #{stays.pk} was not moved to shipped: A pending order cannot be moved to shipped.",
    ]
    assert (status_of(moved), status_of(stays)) == (S.SHIPPED, S.PENDING)


def test_refusals_beyond_the_message_limit_are_summed_up(admin_client, pending, monkeypatch):
    monkeypatch.setattr(order_admin, "MAX_REFUSAL_MESSAGES", 1)
    response = act(admin_client, "mark_delivered", pending)
    first, second = pending
    assert messages_of(response) == [
        f"Order #{first.pk} was not moved to delivered: "
        "A pending order cannot be moved to delivered.",
        f"1 order more not moved to delivered: #{second.pk}.",
    ]


def test_an_action_on_too_many_orders_changes_nothing(admin_client, pending, monkeypatch):
    monkeypatch.setattr(order_admin, "MAX_ACTION_ORDERS", 1)
    response = act(admin_client, "mark_processing", pending)
    assert messages_of(response) == [
        "Select at most 1 orders at a time: nothing was changed. "
        "Narrow the list with a filter or a search first."
    ]
    assert [status_of(order) for order in pending] == [S.PENDING, S.PENDING]


def test_cancel_asks_for_confirmation_first(admin_client, pending):
    response = act(admin_client, "cancel_orders", pending)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Yes, move to cancelled" in html
    assert all(f"#{order.pk}" in html for order in pending)
    assert [status_of(order) for order in pending] == [S.PENDING, S.PENDING]


def test_cancel_when_confirmed_releases_stock_and_records_the_reason(admin_client, pending, mug):
    response = act(admin_client, "cancel_orders", pending, confirm="yes", note="Out of business")
    assert messages_of(response)[0].startswith("Moved 2 orders to cancelled")
    for order in pending:
        assert status_of(order) == S.CANCELLED
        assert order.events.latest("id").note == "Out of business"
    mug.refresh_from_db()
    assert (mug.stock_on_hand, mug.stock_reserved) == (50, 0)
    assert_ledger_explains(mug)


def test_a_cancel_confirmed_after_an_order_left_the_filter_reports_that_order(
    admin_client, pending, superuser
):
    # The list is filtered to pending orders; the member ticks both and asks to cancel.
    filtered = f"{ORDERS}?status__exact=pending"
    ids = [order.pk for order in pending]
    ask = admin_client.post(filtered, {"action": "cancel_orders", "_selected_action": ids})
    assert "Yes, move to cancelled" in ask.content.decode()
    # Meanwhile one of them was processed and shipped: it left the filter.
    gone = pending[0]
    services.order_transition(order=gone, to_status=S.PROCESSING, actor=None)
    services.order_transition(order=gone, to_status=S.SHIPPED, actor=superuser)

    confirmed = admin_client.post(
        filtered,
        {"action": "cancel_orders", "_selected_action": ids, "confirm": "yes", "note": ""},
        follow=True,
    )

    assert messages_of(confirmed) == [
        f"Moved 1 order to cancelled: #{pending[1].pk}.",
        f"Order #{gone.pk} was not moved to cancelled: "
        "A shipped order cannot be moved to cancelled.",
    ]
    assert (status_of(gone), status_of(pending[1])) == (S.SHIPPED, S.CANCELLED)


def test_a_too_long_cancel_reason_is_a_form_error(admin_client, pending):
    response = act(admin_client, "cancel_orders", pending, confirm="yes", note="x" * 1001)
    assert response.status_code == 200
    assert response.context["form"].errors["note"]
    assert [status_of(order) for order in pending] == [S.PENDING, S.PENDING]


def test_actions_apply_to_every_filtered_order_with_select_across(admin_client, pending):
    services.order_transition(order=pending[0], to_status=S.PROCESSING, actor=None)
    response = admin_client.post(
        f"{ORDERS}?status__exact=pending",
        {"action": "mark_processing", "select_across": "1", "_selected_action": [pending[1].pk]},
        follow=True,
    )
    assert messages_of(response) == [f"Moved 1 order to processing: #{pending[1].pk}."]


# --- CSV export --------------------------------------------------------------------


def test_the_export_action_streams_the_selected_orders_as_csv(admin_client, pending):
    response = admin_client.post(
        ORDERS, {"action": "export_csv", "_selected_action": [pending[0].pk]}
    )
    rows = csv_rows(response)
    assert rows == [
        {
            "order": str(pending[0].pk),
            "created_at": timezone.localtime(pending[0].created_at).isoformat(timespec="seconds"),
            "customer_email": "alice@example.com",
            "status": "pending",
            "total": "40.00",
            "currency": settings.CURRENCY,
            "item_count": "3",
            "items": "2 x MUG-001; 1 x CAP-001",
            "shipping_address": "",
        }
    ]


def test_the_export_of_the_list_follows_its_filters_and_search(
    admin_client, pending, mug, superuser
):
    place_order(UserFactory(email="bob@shop.test"), (mug, 1))
    services.order_transition(order=pending[0], to_status=S.CANCELLED, actor=superuser)
    everything = csv_rows(admin_client.get(EXPORT))
    assert len(everything) == 3
    filtered = csv_rows(admin_client.get(EXPORT, {"status__exact": "pending", "q": "alice"}))
    assert [row["order"] for row in filtered] == [str(pending[1].pk)]


@pytest.mark.parametrize(
    "query",
    [
        {"created_at__year": "x"},
        {"created_at__year": "2026", "created_at__month": "13"},
        {"bogus": "1"},
    ],
)
def test_an_export_with_a_bad_filter_goes_back_to_the_list(admin_client, pending, query):
    response = admin_client.get(EXPORT, query)
    assert response.status_code == 302
    assert response["Location"] == f"{ORDERS}?e=1"


def test_the_export_link_carries_the_lists_filters(admin_client, pending):
    html = admin_client.get(ORDERS, {"status__exact": "pending"}).content.decode()
    assert f'href="{EXPORT}?status__exact=pending"' in html


def test_free_text_in_the_export_cannot_run_as_a_spreadsheet_formula(admin_client, mug):
    customer = UserFactory(email="=cmd@example.com")
    order = place_order(customer, (mug, 1), shipping_address="+1 Formula Street")
    row = csv_rows(admin_client.get(EXPORT))[0]
    assert row["order"] == str(order.pk)
    assert row["customer_email"] == "'=cmd@example.com"
    assert row["shipping_address"] == "'+1 Formula Street"


def test_the_export_reads_the_orders_in_chunks_newest_first(pending, mug):
    from orders.selectors import order_export_rows

    more = [place_order(UserFactory(), (mug, 1)) for _ in range(3)]
    expected = sorted((order.pk for order in [*pending, *more]), reverse=True)
    with CaptureQueriesContext(admin_client_connection()) as queries:
        exported = [
            order.pk for order in order_export_rows(orders=Order.objects.all(), chunk_size=2)
        ]
    assert exported == expected
    # Three chunks of orders (2, 2, 1), each with one query for their lines
    # and one for their customers' rows joined in: never one per order.
    order_queries = [q for q in queries if 'FROM "orders_order"' in q["sql"]]
    assert len(order_queries) == 3
    assert len(queries) == 6


def test_the_export_of_an_empty_list_is_just_the_header(admin_client):
    response = admin_client.get(EXPORT)
    assert b"".join(response.streaming_content).decode().strip() == ",".join(order_admin.CSV_HEADER)


# --- Permissions ---------------------------------------------------------------------


def test_a_view_only_staff_member_sees_orders_but_gets_no_actions(client, pending):
    client.force_login(staff_with("view_order"))
    response = client.get(ORDERS)
    assert sorted(listed(response)) == sorted(order.pk for order in pending)
    assert response.context["action_form"] is None
    html = response.content.decode()
    assert 'name="action"' not in html
    assert "Export list as CSV" not in html


def test_a_view_only_staff_member_sees_the_order_page_read_only(client, pending):
    client.force_login(staff_with("view_order"))
    order = pending[0]
    response = client.get(change_url(order))
    assert response.status_code == 200
    html = response.content.decode()
    assert "MUG-001" in html  # the lines
    assert response.context["moves"] == []
    assert 'name="_save"' not in html
    refused = client.post(change_url(order), {"shipping_address": "Elsewhere", "notes": ""})
    assert refused.status_code == 403
    order.refresh_from_db()
    assert order.shipping_address == ""


@pytest.mark.parametrize("action", ["mark_processing", "cancel_orders", "export_csv"])
def test_a_view_only_staff_member_cannot_run_an_action_by_posting_it(client, pending, action):
    client.force_login(staff_with("view_order"))
    response = client.post(
        ORDERS, {"action": action, "_selected_action": [pending[0].pk], "confirm": "yes"}
    )
    assert not isinstance(response, StreamingHttpResponse)
    assert status_of(pending[0]) == S.PENDING


def test_a_view_only_staff_member_cannot_move_or_export(client, pending):
    client.force_login(staff_with("view_order"))
    assert client.post(move_url(pending[0], "processing")).status_code == 403
    assert client.get(EXPORT).status_code == 403
    assert status_of(pending[0]) == S.PENDING


def test_changing_orders_alone_moves_nothing(client, pending):
    client.force_login(staff_with("view_order", "change_order"))
    assert client.get(ORDERS).context["action_form"] is None  # no action at all
    assert client.get(change_url(pending[0])).context["moves"] == []
    assert client.post(move_url(pending[0], "processing")).status_code == 403
    assert status_of(pending[0]) == S.PENDING


def test_moving_orders_does_not_include_exporting_them(client, pending):
    client.force_login(staff_with("view_order", "move_order"))
    response = client.get(ORDERS)
    actions = dict(response.context["action_form"].fields["action"].choices)
    assert "mark_processing" in actions and "cancel_orders" in actions
    assert "export_csv" not in actions
    assert client.get(EXPORT).status_code == 403


def test_the_export_permission_alone_gives_the_export(client, pending):
    client.force_login(staff_with("view_order", "export_order"))
    actions = dict(client.get(ORDERS).context["action_form"].fields["action"].choices)
    assert set(actions) - {""} == {"export_csv"}
    assert len(csv_rows(client.get(EXPORT))) == 2


def test_staff_without_order_permissions_cannot_open_the_orders(client, pending):
    client.force_login(StaffFactory(perms=[]))
    assert client.get(ORDERS).status_code == 403
    assert client.get(change_url(pending[0])).status_code == 403


def test_customers_are_sent_to_the_admin_login(client, alice, pending):
    client.force_login(alice)
    response = client.get(ORDERS)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
