"""Passwords are hashed with Argon2 (SPEC §4).

The test settings use a fast hasher, so Argon2 is switched on here in-process.
"""

import pytest
from django.test import override_settings

from accounts.models import User
from accounts.tests.factories import PASSWORD, UserFactory

ARGON2 = "django.contrib.auth.hashers.Argon2PasswordHasher"


@pytest.mark.django_db
@override_settings(PASSWORD_HASHERS=[ARGON2])
def test_a_registered_users_password_is_hashed_with_argon2(api_client):
    response = api_client.post(
        "/api/v1/auth/register/",
        {"email": "argon@example.com", "password": PASSWORD},
        format="json",
    )

    assert response.status_code == 201, response.content
    user = User.objects.get(email="argon@example.com")
    assert user.password.startswith("argon2$argon2id$")
    assert user.check_password(PASSWORD)


@pytest.mark.django_db
def test_an_older_hash_is_upgraded_to_argon2_at_login(api_client):
    user = UserFactory()  # hashed with the test settings' fast hasher
    assert not user.password.startswith("argon2")

    with override_settings(
        PASSWORD_HASHERS=[ARGON2, "django.contrib.auth.hashers.MD5PasswordHasher"]
    ):
        response = api_client.post(
            "/api/v1/auth/token/", {"email": user.email, "password": PASSWORD}, format="json"
        )

    assert response.status_code == 200, response.content
    user.refresh_from_db()
    assert user.password.startswith("argon2")


# That production settings list Argon2 first is checked in
# orders_project/tests/test_settings.py, with the other start-up settings.
