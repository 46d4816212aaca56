from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html

from core.actors import actor_label
from core.exceptions import DomainError
from core.pagination import EstimatedCountPaginator

from . import services
from .models import AVAILABLE, Product, StockMovement


class StockLevelFilter(admin.SimpleListFilter):
    title = "stock"
    parameter_name = "stock"

    def lookups(self, request, model_admin):
        return (("low", "Low (at or under threshold)"), ("out", "Out of stock"))

    def queryset(self, request, queryset):
        if self.value() == "low":
            return queryset.low_stock()
        if self.value() == "out":
            return queryset.out_of_stock()
        return queryset


class StockAdjustmentForm(forms.Form):
    delta = forms.IntegerField(
        help_text="Signed change of on-hand stock: positive for restock and return, "
        "negative for damage, either for a correction."
    )
    reason = forms.ChoiceField(
        choices=[(kind.value, kind.label) for kind in StockMovement.ADJUSTMENT_KINDS]
    )
    note = forms.CharField(max_length=500, required=False)


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    """The catalogue. Stock figures are read-only here: they change through the
    stock-adjustment form (and orders), which writes the ledger."""

    list_display = (
        "sku",
        "name",
        "price",
        "is_active",
        "stock_on_hand",
        "stock_reserved",
        "available",
        "low_stock",
    )
    list_filter = ("is_active", StockLevelFilter)
    search_fields = ("sku", "name")
    ordering = ("name", "id")
    readonly_fields = (
        "stock_on_hand",
        "stock_reserved",
        "available",
        "created_at",
        "updated_at",
    )
    # What staff may edit is what the catalogue service accepts.
    fields = (*services.CATALOGUE_FIELDS, *readonly_fields)

    @admin.display(description="available", ordering=AVAILABLE)
    def available(self, product):
        return product.stock_available

    @admin.display(boolean=True, description="low stock")
    def low_stock(self, product):
        return product.is_low_on_stock

    # --- What a member may do with stock (the links show only what is allowed) -----

    def has_adjust_stock_permission(self, request, product=None) -> bool:
        # The permission the stock service checks too (inventory.adjust_stock).
        return request.user.has_perm(services.ADJUST_STOCK)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        product = self.get_object(request, object_id)
        extra = {
            "can_adjust_stock": self.has_adjust_stock_permission(request, product),
            "can_view_movements": request.user.has_perm("inventory.view_stockmovement"),
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra)

    # --- Saving and deleting go through the services ------------------------------

    def save_model(self, request, obj, form, change):
        data = {field: form.cleaned_data[field] for field in services.CATALOGUE_FIELDS}
        if change:
            services.product_update(product=obj, data=data)
        else:
            product = services.product_create(**data)
            # The admin goes on with `obj` (messages, redirect, log entry).
            obj.pk = product.pk
            obj.created_at, obj.updated_at = product.created_at, product.updated_at

    def get_deleted_objects(self, objs, request):
        # A product with stock movements is kept, for the ledger and its
        # orders; the delete page then explains why instead of offering to
        # delete (without listing every movement).
        in_use = [product for product in objs if services.product_in_use(product)]
        if in_use:
            protected = [
                f"{product}: has stock movements, which the ledger keeps, so it can only be "
                "deactivated"
                for product in in_use
            ]
            return [], {}, set(), protected
        return super().get_deleted_objects(objs, request)

    def delete_model(self, request, obj):
        services.product_delete(product=obj)

    def delete_queryset(self, request, queryset):
        for product in queryset:
            services.product_delete(product=product)

    # --- The stock-adjustment form -------------------------------------------------

    def get_urls(self):
        return [
            path(
                "<int:object_id>/adjust-stock/",
                self.admin_site.admin_view(self.adjust_stock_view),
                name="inventory_product_adjust_stock",
            ),
            *super().get_urls(),
        ]

    def adjust_stock_view(self, request, object_id):
        product = get_object_or_404(Product, pk=object_id)
        if not self.has_adjust_stock_permission(request, product):
            raise PermissionDenied
        form = StockAdjustmentForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                movement = services.stock_adjust(
                    product=product, actor=request.user, **form.cleaned_data
                )
            except DomainError as error:
                form.add_error(error.attr if error.attr in form.fields else None, error.detail)
            else:
                self.message_user(
                    request,
                    f"{product.sku}: {movement.get_kind_display().lower()} {movement.quantity:+d}; "
                    f"now {product.stock_on_hand} on hand, {product.stock_available} available.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(
                    reverse("admin:inventory_product_change", args=[product.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Adjust stock of {product.sku}",
            "opts": self.opts,
            "original": product,
            "form": form,
            "has_view_permission": True,
        }
        return TemplateResponse(request, "admin/inventory/product/adjust_stock.html", context)


@admin.register(StockMovement)
class StockMovementAdmin(admin.ModelAdmin):
    """The ledger, read-only: movements are written by the stock services."""

    list_display = ("created_at", "product", "kind", "quantity", "order_link", "actor_name", "note")
    list_filter = ("kind", "created_at")
    list_select_related = ("product", "actor")
    search_fields = ("product__sku", "product__name", "note")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-id")
    sortable_by = ()  # the ledger is read newest first, along its index
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    @admin.display(description="order", ordering="order")
    def order_link(self, movement):
        if not movement.order_id:
            return "—"
        try:
            url = reverse("admin:orders_order_change", args=[movement.order_id])
        except NoReverseMatch:  # the orders admin is not installed
            return f"#{movement.order_id}"
        return format_html('<a href="{}">#{}</a>', url, movement.order_id)

    @admin.display(description="actor")
    def actor_name(self, movement):
        return actor_label(movement)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
