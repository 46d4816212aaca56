import time
from contextlib import suppress
from math import ceil

from django.core.exceptions import EmptyResultSet
from django.core.paginator import EmptyPage, Paginator
from django.db import connections
from django.db.models import QuerySet
from django.utils.functional import cached_property
from rest_framework import pagination
from rest_framework.exceptions import ValidationError

# A list past the exact limit keeps its estimate this long (per process and
# query): browsing pages of a million orders then costs the page's own query.
ESTIMATE_SECONDS = 10
MAX_ESTIMATES = 512
_estimates: dict[tuple, tuple[int, float]] = {}


class EstimatedCountPaginator(Paginator):
    """A paginator for tables too big to count on every request (the API's
    lists and the admin's).

    Counts exactly up to `exact_count_limit` rows; beyond that it takes
    PostgreSQL's planner estimate, so a list of a million orders costs a
    LIMIT scan and an EXPLAIN, not a COUNT(*) over the table. Pages stop once
    they would skip more than `max_offset` rows (OFFSET reads every row it
    skips): deeper than that, narrow the list with a filter instead.

    An estimate is reused for `ESTIMATE_SECONDS` by the same process for the
    same query (a list that big does not fall under the limit in seconds);
    exact counts are never reused."""

    exact_count_limit = 10_000
    max_offset = 10_000

    @cached_property
    def count(self) -> int:
        if not isinstance(self.object_list, QuerySet):  # a list: its length is at hand
            return len(self.object_list)
        rows = self.object_list.order_by()
        try:
            sql, params = rows.query.sql_with_params()
        except EmptyResultSet:  # e.g. `.none()`, `pk__in=[]`: nothing to count
            return 0
        key = (rows.db, sql, tuple(map(str, params)))
        known = _estimates.get(key)
        if known and known[1] > time.monotonic():
            return known[0]  # a big list: its estimate, reused for a few seconds
        capped = rows.values("pk")[: self.exact_count_limit + 1].count()
        if capped <= self.exact_count_limit:
            return capped  # exact, and always fresh
        estimate = max(capped, self._planner_estimate(rows))
        _estimates[key] = (estimate, time.monotonic() + ESTIMATE_SECONDS)
        while len(_estimates) > MAX_ESTIMATES:  # drop the oldest
            # Threads of one process may trim at once: a miss is harmless.
            with suppress(RuntimeError, StopIteration):
                _estimates.pop(next(iter(_estimates)), None)
        return estimate

    @cached_property
    def count_is_estimate(self) -> bool:
        return self.count > self.exact_count_limit

    @cached_property
    def num_pages(self) -> int:
        hits = max(1, self.count - self.orphans)
        return min(ceil(hits / self.per_page), self.max_offset // self.per_page + 1)

    @cached_property
    def pages_are_capped(self) -> bool:
        return self.num_pages * self.per_page < self.count

    def validate_number(self, number):
        try:
            return super().validate_number(number)
        except EmptyPage:
            if self.pages_are_capped and int(number) > self.num_pages:
                raise EmptyPage(
                    f"Pages stop at {self.num_pages} for this list; narrow it with a filter."
                ) from None
            raise

    def _planner_estimate(self, rows) -> int:
        connection = connections[rows.db]
        if connection.vendor != "postgresql":
            return rows.count()  # only PostgreSQL estimates; the others are small
        sql, params = rows.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
        return int(plan[0]["Plan"]["Plan Rows"])


def positive_int_param(request, name: str) -> int | None:
    """A positive whole-number query parameter, or None when absent; anything
    else is a 400 naming the parameter (never a 500 or a silent default)."""
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError(
            {name: ["A positive whole number is required."]}, code="invalid"
        ) from None
    if value < 1:
        raise ValidationError({name: ["A positive whole number is required."]}, code="min_value")
    return value


class PageNumberPagination(pagination.PageNumberPagination):
    """`?page=N&page_size=M`: default 20, at most 100 (larger is clamped).

    `count` is exact up to 10,000 and PostgreSQL's estimate beyond, which the
    response says with `X-Count-Estimated: true`; pages stop 10,000 rows in
    (see `EstimatedCountPaginator`). The default size is REST_FRAMEWORK's
    PAGE_SIZE (DRF's own default for `page_size`)."""

    django_paginator_class = EstimatedCountPaginator
    invalid_page_message = "Invalid page: {message}"
    page_size_query_param = "page_size"
    max_page_size = 100

    def get_page_size(self, request):
        size = positive_int_param(request, self.page_size_query_param)
        return self.page_size if size is None else min(size, self.max_page_size)

    def get_page_number(self, request, paginator):
        positive_int_param(request, self.page_query_param)
        return super().get_page_number(request, paginator)

    def get_paginated_response(self, data):
        response = super().get_paginated_response(data)
        if self.page.paginator.count_is_estimate:
            response["X-Count-Estimated"] = "true"
        return response
