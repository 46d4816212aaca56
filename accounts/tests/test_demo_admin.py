"""`ensure_demo_admin` (run by `make run`) sets a public password: it is for
development only."""

import io

import pytest
from django.core.management import CommandError, call_command

from accounts.models import User

pytestmark = pytest.mark.django_db

DEMO = {"email": "admin@example.com", "password": "admin-demo-password"}


def test_it_refuses_with_debug_off_and_leaves_a_deactivated_admin_alone(settings):
    settings.DEBUG = False
    admin = User.objects.create_superuser("admin@example.com", "a-private-Passphrase-9")
    User.objects.filter(pk=admin.pk).update(is_active=False)

    with pytest.raises(CommandError, match="DEBUG is off"):
        call_command("ensure_demo_admin", **DEMO, stdout=io.StringIO())

    admin.refresh_from_db()
    assert admin.is_active is False
    assert admin.check_password("a-private-Passphrase-9")


def test_it_creates_the_demo_admin_in_development(settings):
    settings.DEBUG = True
    call_command("ensure_demo_admin", **DEMO, stdout=io.StringIO())
    admin = User.objects.get(email="admin@example.com")
    assert admin.is_superuser and admin.check_password("admin-demo-password")


def test_it_can_be_told_that_the_database_is_not_production(settings):
    settings.DEBUG = False
    call_command("ensure_demo_admin", **DEMO, not_production=True, stdout=io.StringIO())
    assert User.objects.filter(email="admin@example.com", is_superuser=True).exists()
