import django_filters

from core.filters import DateTimeFilter, IdFilter, OrderingFilter

from .models import MONEY_TOTAL_DIGITS, Order
from .selectors import order_search
from .statuses import OrderStatus


class OrderFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=OrderStatus.choices)
    created_after = DateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = DateTimeFilter(field_name="created_at", lookup_expr="lt")
    min_total = django_filters.NumberFilter(
        field_name="total", lookup_expr="gte", max_digits=MONEY_TOTAL_DIGITS, decimal_places=2
    )
    max_total = django_filters.NumberFilter(
        field_name="total", lookup_expr="lte", max_digits=MONEY_TOTAL_DIGITS, decimal_places=2
    )
    customer = IdFilter(field_name="customer_id", label="Customer id (staff)")
    search = django_filters.CharFilter(
        method="filter_search", max_length=100, label="Order id, SKU or customer e-mail"
    )
    ordering = OrderingFilter(fields=("created_at", "total"))

    class Meta:
        model = Order
        fields = ("status", "created_after", "created_before", "min_total", "max_total")

    def filter_search(self, queryset, name, value):
        return order_search(queryset, value)
