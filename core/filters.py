"""Filter pieces shared by the apps' filter sets: strict about malformed values,
so a bad query parameter is a 400 naming it rather than a silent no-op."""

from datetime import UTC

import django_filters
from django import forms


class StrictBooleanField(forms.Field):
    """true/false (also 1/0, yes/no); anything else is an error. Django's
    NullBooleanField would quietly read "maybe" as no filter at all."""

    TRUE = {"true", "1", "yes", "on"}
    FALSE = {"false", "0", "no", "off"}

    def to_python(self, value):
        if value in (None, ""):
            return None
        text = str(value).strip().lower()
        if text in self.TRUE:
            return True
        if text in self.FALSE:
            return False
        raise forms.ValidationError("Use true or false.", code="invalid")


class BooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


class OrderingFilter(django_filters.OrderingFilter):
    """`?ordering=` with the primary key as the last tie-breaker, so that pages
    of equal sort keys neither repeat nor skip rows."""

    def filter(self, qs, value):
        # `?ordering=,,` parses to empty names: they order nothing.
        value = [part for part in value or () if part]
        qs = super().filter(qs, value)
        if value and not any(part.lstrip("-") in {"id", "pk"} for part in qs.query.order_by):
            descending = str(qs.query.order_by[-1]).startswith("-")
            qs = qs.order_by(*qs.query.order_by, "-pk" if descending else "pk")
        return qs


class UtcDateTimeField(forms.DateTimeField):
    """An ISO 8601 date-time (or date), converted to UTC. A value the
    database could not take — an offset like -21:55, a year out of range
    once converted — is refused here rather than by the database."""

    def to_python(self, value):
        value = super().to_python(value)
        if value is None:
            return None
        try:
            return value.astimezone(UTC)
        except (OverflowError, ValueError):
            raise forms.ValidationError("Enter a valid date/time.", code="invalid") from None


class DateTimeFilter(django_filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


# The largest id a bigint column holds.
MAX_ID = 2**63 - 1


class IdFilter(django_filters.Filter):
    """A whole-number id; anything else, or one past the column, is a 400."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)
