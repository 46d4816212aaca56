"""Page-number pagination for every list (SPEC §3), tested on a plain list."""

import pytest
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from core.pagination import PageNumberPagination

ITEMS = list(range(250))


def paginate(query: str):
    request = Request(APIRequestFactory().get(f"/things/{query}"))
    paginator = PageNumberPagination()
    page = paginator.paginate_queryset(ITEMS, request)
    return paginator.get_paginated_response(page).data


def test_default_page_has_twenty_items_and_the_counts():
    body = paginate("")
    assert list(body) == ["count", "next", "previous", "results"]
    assert body["count"] == 250 and body["results"] == ITEMS[:20]
    assert body["previous"] is None and "page=2" in body["next"]


def test_page_size_is_clamped_to_one_hundred():
    assert paginate("?page_size=1000")["results"] == ITEMS[:100]
    assert paginate("?page=2&page_size=30")["results"] == ITEMS[30:60]


@pytest.mark.parametrize("param", ["page", "page_size"])
@pytest.mark.parametrize("value", ["abc", "0", "-3", "1.5", "99999999999999999999x"])
def test_a_malformed_page_parameter_is_a_400_naming_it(param, value):
    with pytest.raises(ValidationError) as caught:
        paginate(f"?{param}={value}")
    assert param in caught.value.detail
