"""Test helpers of the accounts app, for every app's tests."""

from rest_framework.test import APIClient

from accounts.services import user_tokens


def bearer_client(user) -> APIClient:
    """A client that authenticates with a real access JWT, as API clients do."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {user_tokens(user=user)['access']}")
    return client
