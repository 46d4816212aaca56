import django_filters
from django.db.models import Q

from core.filters import BooleanFilter, OrderingFilter

from .models import Product


class ProductFilter(django_filters.FilterSet):
    search = django_filters.CharFilter(
        method="filter_search", max_length=100, label="Search SKU and name"
    )
    is_active = BooleanFilter()
    in_stock = BooleanFilter(method="filter_in_stock", label="Has stock available")
    min_price = django_filters.NumberFilter(
        field_name="price", lookup_expr="gte", max_digits=12, decimal_places=2
    )
    max_price = django_filters.NumberFilter(
        field_name="price", lookup_expr="lte", max_digits=12, decimal_places=2
    )
    ordering = OrderingFilter(fields=("price", "name", "created_at"))

    class Meta:
        model = Product
        fields = ("search", "is_active", "in_stock", "min_price", "max_price")

    def filter_search(self, queryset, name, value):
        return queryset.filter(Q(sku__icontains=value) | Q(name__icontains=value))

    def filter_in_stock(self, queryset, name, value):
        return queryset.in_stock() if value else queryset.out_of_stock()
