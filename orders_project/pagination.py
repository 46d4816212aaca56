from rest_framework import pagination
from rest_framework.exceptions import ValidationError


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
    """`?page=N&page_size=M`: default 20, at most 100 (larger is clamped)."""

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100

    def get_page_size(self, request):
        size = positive_int_param(request, self.page_size_query_param)
        return self.page_size if size is None else min(size, self.max_page_size)

    def get_page_number(self, request, paginator):
        positive_int_param(request, self.page_query_param)
        return super().get_page_number(request, paginator)
