"""Filter pieces shared by the apps' filter sets: strict about malformed values,
so a bad query parameter is a 400 naming it rather than a silent no-op."""

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
        qs = super().filter(qs, value)
        if value and not any(part.lstrip("-") in {"id", "pk"} for part in qs.query.order_by):
            descending = str(qs.query.order_by[-1]).startswith("-")
            qs = qs.order_by(*qs.query.order_by, "-pk" if descending else "pk")
        return qs
