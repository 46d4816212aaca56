"""A customer who signed in by SMS has a phone and no e-mail (SPEC §4).
Everything that shows or mails a user copes: the model, the admin, the
order's representation, the history's actor, the CSV export, the order
search, the confirmation e-mails and the staff mailings."""

import csv
import io
from decimal import Decimal

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.urls import reverse

from accounts.admin import UserCreationForm, UserEditForm
from accounts.models import User
from accounts.tests.factories import PASSWORD, StaffFactory, UserFactory
from accounts.tests.helpers import bearer_client
from core.actors import actor_label
from inventory.reports import low_stock_report_recipients
from inventory.tests.factories import ProductFactory
from orders import selectors, services
from orders.models import OrderEmail
from orders.statuses import OrderStatus
from orders.tests.factories import place_order
from orders_project.tests.test_api_docs import assert_documented

PHONE = "+14155550123"

pytestmark = pytest.mark.django_db


@pytest.fixture
def texter():
    """A customer made by a first login by SMS: a phone, no e-mail, no password."""
    user = User.objects.create(phone=PHONE)
    user.set_unusable_password()
    user.save()
    return user


@pytest.fixture
def order(texter):
    return place_order(texter, (ProductFactory(price=Decimal("5.00"), stock=10), 2))


def test_a_missing_email_is_stored_as_null_so_many_customers_may_lack_one(texter):
    other = User.objects.create(phone="+14155550124", email="")

    assert User.objects.filter(email__isnull=True).count() == 2
    assert other.email is None
    assert str(texter) == PHONE


def test_the_database_refuses_an_empty_email_or_phone(texter):
    for column in ("email", "phone"):
        with pytest.raises(IntegrityError), transaction.atomic():
            User.objects.filter(pk=texter.pk).update(**{column: ""})


def test_a_phone_is_unique_in_the_database(texter):
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(phone=PHONE)


def test_the_order_shows_a_null_email_and_matches_its_schema(client, texter, order):
    response = bearer_client(texter).get(f"/api/v1/orders/{order.pk}/")

    assert response.status_code == 200, response.content
    assert response.json()["customer"] == {"id": texter.pk, "email": None}
    assert_documented(client, "/api/v1/orders/{id}/", "get", response)


def test_me_matches_its_schema_without_an_email(client, texter):
    response = bearer_client(texter).get("/api/v1/auth/me/")

    assert response.json()["email"] is None
    assert_documented(client, "/api/v1/auth/me/", "get", response)


def test_the_history_names_the_customer_by_phone(texter, order):
    services.order_cancel(order=order, actor=texter)

    events = bearer_client(texter).get(f"/api/v1/orders/{order.pk}/events/").json()
    assert [event["actor"] for event in events["results"]] == [PHONE, PHONE]
    assert actor_label(order.events.select_related("actor").first()) == PHONE


def test_no_confirmation_is_mailed_to_a_customer_without_email(
    texter, order, celery_eager, django_capture_on_commit_callbacks
):
    mailed = UserFactory(email="mailed@example.com")
    place_order(mailed, (ProductFactory(stock=5), 1))
    from orders import tasks

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks.process_pending_orders.apply().get()["processed"] == 2

    order.refresh_from_db()
    assert order.status == OrderStatus.PROCESSING
    assert [m.to for m in mail.outbox] == [["mailed@example.com"]]
    assert not OrderEmail.objects.filter(order=order).exists()


def test_the_csv_export_leaves_the_email_cell_empty(admin_client, order):
    response = admin_client.post(
        reverse("admin:orders_order_changelist"),
        {"action": "export_csv", "_selected_action": [order.pk]},
    )

    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(row["order"], row["customer_email"]) for row in rows] == [(str(order.pk), "")]


def test_the_order_search_copes_with_customers_without_email(texter, order):
    mailed = UserFactory(email="findme@example.com")
    found = place_order(mailed, (ProductFactory(stock=5), 1))
    orders = selectors.order_list(user=StaffFactory())

    assert list(selectors.order_search(orders, "findme").values_list("pk", flat=True)) == [found.pk]
    assert order.pk in selectors.order_search(orders, str(order.pk)).values_list("pk", flat=True)


def test_the_admin_pages_show_a_customer_without_email(admin_client, texter, order):
    pages = [
        reverse("admin:accounts_user_changelist"),
        reverse("admin:accounts_user_change", args=[texter.pk]),
        reverse("admin:orders_order_changelist"),
        reverse("admin:orders_order_change", args=[order.pk]),
        reverse("admin:orders_order_changelist") + "?q=" + PHONE[1:],
        reverse("admin:index"),
    ]
    for page in pages:
        response = admin_client.get(page)
        assert response.status_code == 200, page
    assert PHONE in admin_client.get(reverse("admin:orders_order_changelist")).content.decode()


def test_staff_without_email_get_no_mailing(texter):
    StaffFactory(email="boss@example.com")
    User.objects.filter(pk=texter.pk).update(is_staff=True)

    assert low_stock_report_recipients() == ["boss@example.com"]


# --- The admin's forms ----------------------------------------------------------------


def edit_form(user, **changes):
    data = {
        "email": user.email or "",
        "phone": str(user.phone or ""),
        "first_name": user.first_name,
        "last_name": user.last_name,
        "is_active": "on",
        "date_joined": "2026-01-01 00:00:00",
        **changes,
    }
    data = {key: value for key, value in data.items() if value is not False}
    return UserEditForm(data=data, instance=user)


def test_the_admin_keeps_a_customer_without_email_and_stores_null(texter):
    form = edit_form(texter, first_name="Ada")

    assert form.is_valid(), form.errors
    form.save()
    texter.refresh_from_db()
    assert texter.email is None and texter.first_name == "Ada"


def test_the_admin_requires_an_email_for_staff(texter):
    form = edit_form(texter, is_staff="on")

    assert not form.is_valid()
    assert "Staff members need an e-mail address" in form.errors["email"][0]


def test_the_admin_requires_an_email_or_a_phone(texter):
    form = edit_form(texter, phone="")

    assert not form.is_valid()
    assert form.errors["email"] == ["Enter an e-mail address or a phone number."]


@pytest.mark.parametrize(
    ("phone", "message"),
    [("+19005550123", "cannot be sent"), ("12345", "valid phone number")],
)
def test_the_admin_applies_the_phone_rules(texter, phone, message):
    form = edit_form(texter, phone=phone)

    assert not form.is_valid()
    assert message in form.errors["phone"][0]


def test_the_admin_adds_a_customer_by_phone_alone(db):
    form = UserCreationForm(
        data={"phone": "+1 415 555 0123", "password1": PASSWORD, "password2": PASSWORD}
    )

    assert form.is_valid(), form.errors
    user = form.save()
    assert (user.email, str(user.phone)) == (None, PHONE)


def test_the_admin_refuses_a_taken_phone(texter):
    form = UserCreationForm(data={"phone": PHONE, "password1": PASSWORD, "password2": PASSWORD})

    assert not form.is_valid()
    assert "phone" in form.errors


def test_createsuperuser_still_requires_an_email(db):
    with pytest.raises(CommandError):
        call_command("createsuperuser", interactive=False, verbosity=0)

    call_command("createsuperuser", interactive=False, email="root2@example.com", verbosity=0)
    assert User.objects.get(email="root2@example.com").is_superuser
