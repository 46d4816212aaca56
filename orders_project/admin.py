"""The back office's own admin site: the dashboard on its index page, and a
paginator for tables too big to count on every page view."""

from math import ceil

from django.contrib import admin
from django.core.paginator import Paginator
from django.db import connections
from django.utils.functional import cached_property

from . import dashboard


class OrdersAdminSite(admin.AdminSite):
    site_header = "Orders back office"
    site_title = "Orders admin"
    index_title = "Today"

    def index(self, request, extra_context=None):
        return super().index(
            request, {**dashboard.dashboard_context(request), **(extra_context or {})}
        )


class EstimatedCountPaginator(Paginator):
    """Counts exactly up to `exact_count_limit` rows, and beyond that takes
    PostgreSQL's planner estimate: a list of a million orders costs a LIMIT
    scan and an EXPLAIN per page view, not a COUNT(*) over the table.

    Pages stop at `max_pages`, so no page makes the database skip more than
    `max_pages * per_page` rows (OFFSET reads every row it skips); past that,
    staff narrow the list with a filter, a date or a search."""

    exact_count_limit = 10_000
    max_pages = 200

    @cached_property
    def count(self) -> int:
        rows = self.object_list.order_by()
        capped = rows.values("pk")[: self.exact_count_limit + 1].count()
        if capped <= self.exact_count_limit:
            return capped
        return max(capped, self._planner_estimate(rows))

    @cached_property
    def count_is_estimate(self) -> bool:
        return self.count > self.exact_count_limit

    @cached_property
    def num_pages(self) -> int:
        hits = max(1, self.count - self.orphans)
        return min(ceil(hits / self.per_page), self.max_pages)

    @cached_property
    def pages_are_capped(self) -> bool:
        return self.num_pages * self.per_page < self.count

    def _planner_estimate(self, rows) -> int:
        connection = connections[rows.db]
        if connection.vendor != "postgresql":
            return rows.count()  # only PostgreSQL estimates; the others are small
        sql, params = rows.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
            plan = cursor.fetchone()[0]
        return int(plan[0]["Plan"]["Plan Rows"])
