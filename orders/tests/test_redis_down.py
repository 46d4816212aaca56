"""Redis unreachable (issue 8): orders are still placed, at full speed.

Redis carries the throttle counters and the cache; placing an order needs
neither (and never talks to the broker: test_broker_down.py). Throttles let
requests through while Redis is down, and after one failure stop asking it
for a few seconds, so only one request pays the connect timeout."""

import time

import pytest

from accounts.tests.factories import UserFactory
from accounts.tests.helpers import bearer_client
from core import cache as versioned_cache
from core.testing import Blackhole
from inventory.tests.factories import ProductFactory
from orders.models import Order

pytestmark = pytest.mark.django_db

TIMEOUT = 0.5  # the cache's socket timeouts in these tests


@pytest.fixture
def redis_at(settings):
    """Point the cache (and so the throttles) at `url`."""

    def use(url: str) -> None:
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": url,
                "OPTIONS": {"socket_connect_timeout": TIMEOUT, "socket_timeout": TIMEOUT},
            }
        }

    return use


@pytest.fixture
def hanging_redis():
    blackhole = Blackhole()
    yield f"redis://127.0.0.1:{blackhole.port}/0"
    blackhole.close()


def place(client, product) -> tuple[int, float]:
    started = time.perf_counter()
    response = client.post(
        "/api/v1/orders/",
        {"items": [{"product_id": product.pk, "quantity": 1}]},
        format="json",
        HTTP_IDEMPOTENCY_KEY=f"key-{time.monotonic_ns()}",
    )
    return response.status_code, time.perf_counter() - started


def test_orders_are_placed_when_redis_refuses_connections(redis_at, log_lines):
    redis_at("redis://127.0.0.1:9/0")  # nothing listens there
    product = ProductFactory(stock=10)
    client = bearer_client(UserFactory())
    for _ in range(3):
        status, seconds = place(client, product)
        assert status == 201
        assert seconds < 1.0
    assert Order.objects.count() == 3
    assert any("Redis unavailable" in line for line in log_lines())


def test_only_the_first_request_waits_for_a_redis_that_never_answers(
    redis_at, hanging_redis, log_lines
):
    redis_at(hanging_redis)
    product = ProductFactory(stock=10)
    client = bearer_client(UserFactory())
    first_status, first = place(client, product)
    later = [place(client, product) for _ in range(3)]
    assert first_status == 201 and first < 1.0 + TIMEOUT
    assert [status for status, _ in later] == [201, 201, 201]
    assert max(seconds for _, seconds in later) < TIMEOUT  # the pause skips Redis
    # One breaker for the cache and the throttles: one timeout, one warning.
    warnings = [line for line in log_lines() if "Redis unavailable" in line]
    assert len(warnings) == 1


def test_redis_is_asked_again_after_the_pause(redis_at, monkeypatch, log_lines):
    redis_at("redis://127.0.0.1:9/0")
    monkeypatch.setattr(versioned_cache, "DOWN_PAUSE", 0)
    product = ProductFactory(stock=10)
    client = bearer_client(UserFactory())

    def warnings() -> int:
        return len([line for line in log_lines() if "Redis unavailable" in line])

    before = warnings()  # creating the product invalidated its cache entry
    place(client, product)
    one = warnings() - before
    place(client, product)
    assert one >= 1 and warnings() - before == 2 * one
