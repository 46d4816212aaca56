"""The orders back office: find an order, read its lines, history and
e-mails, move orders along the status machine, export lists as CSV.

Nothing here writes an order itself. The actions and the move page call
`orders.services`, which apply the same rules as the API (the status table,
stock release and consumption, an event per move); the change form edits
only the delivery details, through `order_update_details`. Lines, totals,
status and stock are read-only on every admin page.

Built for a table of millions: the list selects customers in the same query,
counts units with a per-row subquery on the page's rows only, sorts only on
indexed columns, and counts with `EstimatedCountPaginator`.
"""

import csv
from collections.abc import Iterable, Iterator

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ERROR_FLAG, ChangeList
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from core.actors import actor_label
from core.exceptions import DomainError
from core.pagination import EstimatedCountPaginator

from . import selectors, services
from .emails import MAX_ATTEMPTS
from .models import Order, OrderEmail, OrderEvent, OrderLine
from .statuses import Actor, OrderStatus, allowed_targets

# Actions run inside the request, one transaction per order: a selection is
# capped so a click on "select all" cannot start a million moves.
MAX_ACTION_ORDERS = 500
# Refusals are reported order by order, up to this many messages.
MAX_REFUSAL_MESSAGES = 20

CSV_HEADER = (
    "order",
    "created_at",
    "customer_email",
    "status",
    "total",
    "currency",
    "item_count",
    "items",
    "shipping_address",
)


# --- Inlines: an order's parts, read-only --------------------------------------------


class OrderPartInline(admin.TabularInline):
    """Part of an order, shown on its page to whoever may view the order and
    never edited there."""

    extra = 0
    can_delete = False

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("orders.view_order")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class OrderLineInline(OrderPartInline):
    model = OrderLine
    verbose_name_plural = "lines"
    fields = readonly_fields = ("product_link", "name", "unit_price", "quantity", "line_total")

    @admin.display(description="SKU")
    def product_link(self, line):
        url = reverse("admin:inventory_product_change", args=[line.product_id])
        return format_html('<a href="{}">{}</a>', url, line.sku)


class OrderEventInline(OrderPartInline):
    model = OrderEvent
    verbose_name_plural = "history"
    fields = readonly_fields = ("created_at", "type", "from_status", "to_status", "by", "note")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor")

    @admin.display(description="by")
    def by(self, event):
        return actor_label(event)


class OrderEmailInline(OrderPartInline):
    model = OrderEmail
    verbose_name_plural = "e-mails"
    fields = readonly_fields = ("kind", "state", "attempts", "last_error")

    @admin.display(description="state")
    def state(self, email):
        if email.sent_at:
            return f"sent {timezone.localtime(email.sent_at):%Y-%m-%d %H:%M}"
        if email.attempts >= MAX_ATTEMPTS:
            return "given up"
        return f"queued, next try {timezone.localtime(email.next_attempt_at):%Y-%m-%d %H:%M}"


# --- Forms ----------------------------------------------------------------------


class OrderForm(forms.ModelForm):
    """The only fields staff edit on the order page; the save goes through
    `order_update_details`, which records what changed."""

    class Meta:
        model = Order
        fields = ("shipping_address", "notes")
        widgets = {"notes": forms.Textarea(attrs={"rows": 3})}


class MoveForm(forms.Form):
    note = forms.CharField(
        max_length=1000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Kept with the move in each order's history.",
    )


# --- The order list ----------------------------------------------------------------


class OrderChangeList(ChangeList):
    """Adds each listed order's unit count with one query for the page. A
    subquery in the list's SELECT would also run for every row an OFFSET
    skips, so deep pages would pay for rows nobody sees."""

    def get_results(self, request):
        super().get_results(request)
        self.result_list = list(self.result_list)
        units = selectors.order_units(order_ids=[order.pk for order in self.result_list])
        for order in self.result_list:
            order.units = units.get(order.pk, 0)


# --- The order admin ---------------------------------------------------------------


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    form = OrderForm
    list_display = (
        "number",
        "customer_email",
        "status",
        "total_amount",
        "item_count",
        "created_at",
    )
    list_display_links = ("number",)
    list_filter = ("status", ("created_at", admin.DateFieldListFilter))
    list_select_related = ("customer",)
    date_hierarchy = "created_at"
    # Only orderings an index serves: the list stays fast at millions of rows.
    sortable_by = ("number", "created_at")
    search_fields = ("id", "customer__email", "lines__sku")  # see get_search_results
    search_help_text = (
        "An order number (123 or #123), a SKU, or a customer's e-mail address or part of it."
    )
    list_per_page = 50
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would scan the table
    inlines = (OrderLineInline, OrderEventInline, OrderEmailInline)
    actions = ("mark_processing", "mark_shipped", "mark_delivered", "cancel_orders", "export_csv")
    fieldsets = (
        (
            None,
            {"fields": ("number", "status", "customer_link", "total_amount", "item_count")},
        ),
        ("Delivery", {"fields": ("shipping_address", "notes")}),
        ("Dates", {"fields": ("created_at", "updated_at")}),
    )
    readonly_fields = (
        "number",
        "status",
        "customer_link",
        "total_amount",
        "item_count",
        "created_at",
        "updated_at",
    )

    def get_changelist(self, request, **kwargs):
        return OrderChangeList

    # --- Columns -------------------------------------------------------------------

    @admin.display(description="order", ordering="id")
    def number(self, order):
        return f"#{order.pk}"

    @admin.display(description="customer")
    def customer_email(self, order):
        return str(order.customer)  # the e-mail, or the phone of an SMS-only customer

    @admin.display(description="customer")
    def customer_link(self, order):
        url = reverse("admin:accounts_user_change", args=[order.customer_id])
        return format_html('<a href="{}">{}</a>', url, order.customer)

    @admin.display(description="total")
    def total_amount(self, order):
        return f"{order.total:,.2f} {order.currency}"

    @admin.display(description="items")
    def item_count(self, order):
        if not hasattr(order, "units"):  # the order page; the list sets it per page
            order.units = selectors.order_units(order_ids=[order.pk]).get(order.pk, 0)
        return order.units

    # --- Search: one indexed lookup per kind of term ------------------------------

    def get_search_results(self, request, queryset, search_term):
        """The same search as the API's `?search=` (`selectors.order_search`):
        an order number, part of an e-mail address or of a SKU."""
        return selectors.order_search(queryset, search_term), False

    # --- Nothing is added, deleted or re-priced here -------------------------------

    def has_add_permission(self, request):
        return False  # orders are placed through the API, which reserves their stock

    def has_delete_permission(self, request, obj=None):
        return False  # an order stays, for its history and the stock ledger

    def has_export_permission(self, request):
        return request.user.has_perm("orders.export_order")

    def has_move_permission(self, request, obj=None):
        # The same rule as the API's: the services check it again on each move.
        return services.can_move_orders(request.user)

    def save_model(self, request, obj, form, change):
        services.order_update_details(
            order=obj.pk,
            actor=request.user,
            shipping_address=form.cleaned_data["shipping_address"],
            notes=form.cleaned_data["notes"],
        )

    # --- Moving orders --------------------------------------------------------------

    def _move(self, request, queryset, to_status: str, note: str = "") -> None:
        """Move the selected orders one by one through the orders service and
        report which moved and, order by order, which could not and why."""
        order_ids = self._selected_ids(request, queryset)
        if order_ids is None:
            return
        report = services.order_transition_each(
            order_ids=order_ids, to_status=to_status, actor=request.user, note=note
        )
        label = OrderStatus(to_status).label.lower()
        if report.moved:
            self.message_user(
                request,
                f"Moved {_orders(len(report.moved))} to {label}: {_numbers(report.moved)}.",
                messages.SUCCESS,
            )
        refused = list(report.refused.items())
        for order_id, reason in refused[:MAX_REFUSAL_MESSAGES]:
            self.message_user(
                request, f"Order #{order_id} was not moved to {label}: {reason}", messages.ERROR
            )
        if len(refused) > MAX_REFUSAL_MESSAGES:
            rest = [order_id for order_id, _ in refused[MAX_REFUSAL_MESSAGES:]]
            self.message_user(
                request,
                f"{_orders(len(rest))} more not moved to {label}: {_numbers(rest)}.",
                messages.ERROR,
            )

    def _selected_ids(self, request, queryset) -> list[int] | None:
        """The orders the member ticked, by id: not narrowed again by the
        list's filters, which an order may have left since the page was shown
        (a worker moved it): the move then reports it, rather than skipping it
        without a word. "Select all" takes the list as it is filtered now."""
        if request.POST.get("select_across") not in ("1", "True", "true"):
            ticked = request.POST.getlist(ACTION_CHECKBOX_NAME)
            ids = sorted({int(pk) for pk in ticked if pk.isascii() and pk.isdigit()})
        else:
            ids = list(
                queryset.order_by("pk").values_list("pk", flat=True)[: MAX_ACTION_ORDERS + 1]
            )
        if len(ids) > MAX_ACTION_ORDERS:
            self.message_user(
                request,
                f"Select at most {MAX_ACTION_ORDERS} orders at a time: nothing was changed. "
                "Narrow the list with a filter or a search first.",
                messages.ERROR,
            )
            return None
        return ids

    @admin.action(description="Mark selected orders as processing", permissions=["move"])
    def mark_processing(self, request, queryset):
        self._move(request, queryset, OrderStatus.PROCESSING)

    @admin.action(description="Mark selected orders as shipped", permissions=["move"])
    def mark_shipped(self, request, queryset):
        self._move(request, queryset, OrderStatus.SHIPPED)

    @admin.action(description="Mark selected orders as delivered", permissions=["move"])
    def mark_delivered(self, request, queryset):
        self._move(request, queryset, OrderStatus.DELIVERED)

    @admin.action(description="Cancel selected orders…", permissions=["move"])
    def cancel_orders(self, request, queryset):
        """Asks first, with an optional reason, like Django's delete action."""
        form = MoveForm(request.POST if request.POST.get("confirm") else None)
        if form.is_valid():
            self._move(request, queryset, OrderStatus.CANCELLED, note=form.cleaned_data["note"])
            return None
        order_ids = self._selected_ids(request, queryset)
        if order_ids is None:
            return None
        return self._confirmation(
            request,
            orders=Order.objects.select_related("customer").filter(pk__in=order_ids),
            to_status=OrderStatus.CANCELLED,
            form=form,
            action="cancel_orders",
        )

    def _confirmation(self, request, *, orders, to_status, form, action=None, order=None):
        context = {
            **self.admin_site.each_context(request),
            "title": f"Move to {OrderStatus(to_status).label.lower()}?",
            "opts": self.opts,
            "orders": orders,
            "to_status": OrderStatus(to_status),
            "form": form,
            "action": action,
            "original": order,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/orders/order/move_confirmation.html", context)

    def move_view(self, request, object_id, to_status):
        """The order page's move buttons: confirm (with a note), then move."""
        order = get_object_or_404(
            self.get_queryset(request).select_related("customer"), pk=object_id
        )
        if not self.has_move_permission(request, order):
            raise PermissionDenied
        if to_status not in OrderStatus.values:
            raise Http404("No such status.")
        form = MoveForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            try:
                services.order_transition(
                    order=order,
                    to_status=to_status,
                    actor=request.user,
                    note=form.cleaned_data["note"],
                )
            except DomainError as error:
                self.message_user(
                    request, f"Order #{order.pk} was not moved: {error.detail}", messages.ERROR
                )
            else:
                self.message_user(
                    request,
                    f"Order #{order.pk} moved to {OrderStatus(to_status).label.lower()}.",
                    messages.SUCCESS,
                )
            return HttpResponseRedirect(reverse("admin:orders_order_change", args=[order.pk]))
        return self._confirmation(
            request, orders=[order], to_status=to_status, form=form, order=order
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        moves = []
        order = self.get_object(request, object_id)
        if order is not None and self.has_move_permission(request, order):
            moves = [
                (OrderStatus(target), reverse("admin:orders_order_move", args=[order.pk, target]))
                for target in allowed_targets(order.status, Actor.STAFF)
            ]
        return super().change_view(
            request, object_id, form_url, {"moves": moves, **(extra_context or {})}
        )

    # --- CSV export -----------------------------------------------------------------

    @admin.action(description="Export selected orders as CSV", permissions=["export"])
    def export_csv(self, request, queryset):
        return csv_response(queryset, user=request.user)

    def export_view(self, request):
        """The whole list as filtered, searched and dated on the changelist."""
        if not self.has_export_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:  # as the list itself answers a bad filter
            return HttpResponseRedirect(
                f"{reverse('admin:orders_order_changelist')}?{ERROR_FLAG}=1"
            )
        return csv_response(changelist.get_queryset(request), user=request.user)

    def changelist_view(self, request, extra_context=None):
        extra = {"can_export": self.has_export_permission(request), **(extra_context or {})}
        return super().changelist_view(request, extra)

    def get_urls(self):
        return [
            path(
                "export/",
                self.admin_site.admin_view(self.export_view),
                name="orders_order_export",
            ),
            path(
                "<int:object_id>/move/<str:to_status>/",
                self.admin_site.admin_view(self.move_view),
                name="orders_order_move",
            ),
            *super().get_urls(),
        ]


def _orders(count: int) -> str:
    return f"{count} order" if count == 1 else f"{count} orders"


def _numbers(order_ids: Iterable[int]) -> str:
    return ", ".join(f"#{order_id}" for order_id in order_ids)


# --- CSV ----------------------------------------------------------------------------


class _Echo:
    """A file-like object whose write() hands the row back, for streaming."""

    def write(self, value):
        return value


def _cell(text: str) -> str:
    """Free text as a CSV cell a spreadsheet will not run as a formula."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def order_csv_rows(orders, *, user=None) -> Iterator[list]:
    yield list(CSV_HEADER)
    for order in selectors.order_export_rows(orders=orders, user=user):
        lines = order.lines.all()
        yield [
            order.pk,
            timezone.localtime(order.created_at).isoformat(timespec="seconds"),
            _cell(order.customer.email or ""),
            order.status,
            f"{order.total:.2f}",
            order.currency,
            sum(line.quantity for line in lines),
            _cell("; ".join(f"{line.quantity} x {line.sku}" for line in lines)),
            _cell(order.shipping_address),
        ]


def csv_response(orders, *, user) -> StreamingHttpResponse:
    """`orders` as a CSV download, written as it is read: a few thousand
    orders in memory at a time, whatever the size of the export; from a
    replica when one may serve `user`."""
    writer = csv.writer(_Echo())
    response = StreamingHttpResponse(
        (writer.writerow(row) for row in order_csv_rows(orders, user=user)),
        content_type="text/csv; charset=utf-8",
    )
    filename = f"orders-{timezone.localtime():%Y%m%d-%H%M%S}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
