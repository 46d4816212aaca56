"""Template tags of the back office: `{% load backoffice %}`."""

import calendar
import datetime

from django import template
from django.contrib.admin.templatetags.base import InclusionAdminNode
from django.db.models import Max, Min
from django.utils import formats, timezone
from django.utils.text import capfirst

register = template.Library()


def calendar_date_hierarchy(cl) -> dict:
    """Django's date hierarchy (same links, same template), with the choices
    drawn from the calendar between the table's first and last dates instead
    of a `SELECT DISTINCT date_trunc(...)` over the filtered rows: that query
    reads every row of a million-row list on each page view, while the first
    and last dates are two probes of the date column's index. A date with
    nothing in it shows an empty list."""
    field_name = cl.date_hierarchy
    year_field, month_field, day_field = (
        f"{field_name}__year",
        f"{field_name}__month",
        f"{field_name}__day",
    )
    year, month, day = (cl.params.get(name) for name in (year_field, month_field, day_field))

    def link(filters):
        return cl.get_query_string(filters, [f"{field_name}__"])

    bounds = cl.root_queryset.aggregate(first=Min(field_name), last=Max(field_name))
    if not (bounds["first"] and bounds["last"]):
        return {"show": False}
    first, last = (timezone.localtime(bounds[key]).date() for key in ("first", "last"))
    if not (year or month or day) and first.year == last.year:
        year = first.year
        if first.month == last.month:
            month = first.month

    if year and month and day:
        date = datetime.date(int(year), int(month), int(day))
        return {
            "show": True,
            "back": {
                "link": link({year_field: year, month_field: month}),
                "title": capfirst(formats.date_format(date, "YEAR_MONTH_FORMAT")),
            },
            "choices": [{"title": capfirst(formats.date_format(date, "MONTH_DAY_FORMAT"))}],
        }
    if year and month:
        year, month = int(year), int(month)
        days = [
            datetime.date(year, month, number)
            for number in range(1, calendar.monthrange(year, month)[1] + 1)
            if first <= datetime.date(year, month, number) <= last
        ]
        return {
            "show": True,
            "back": {"link": link({year_field: year}), "title": str(year)},
            "choices": [
                {
                    "link": link({year_field: year, month_field: month, day_field: date.day}),
                    "title": capfirst(formats.date_format(date, "MONTH_DAY_FORMAT")),
                }
                for date in days
            ],
        }
    if year:
        year = int(year)
        months = [
            datetime.date(year, number, 1)
            for number in range(1, 13)
            if (first.year, first.month) <= (year, number) <= (last.year, last.month)
        ]
        return {
            "show": True,
            "back": {"link": link({}), "title": "All dates"},
            "choices": [
                {
                    "link": link({year_field: year, month_field: date.month}),
                    "title": capfirst(formats.date_format(date, "YEAR_MONTH_FORMAT")),
                }
                for date in months
            ],
        }
    return {
        "show": True,
        "back": None,
        "choices": [
            {"link": link({year_field: str(number)}), "title": str(number)}
            for number in range(first.year, last.year + 1)
        ],
    }


@register.tag(name="calendar_date_hierarchy")
def calendar_date_hierarchy_tag(parser, token):
    return InclusionAdminNode(
        parser,
        token,
        func=calendar_date_hierarchy,
        template_name="date_hierarchy.html",
        takes_context=False,
    )
