"""Webhooks in the back office (SPEC §9): subscriptions, and the log of what
was sent to them, attempt by attempt.

Nothing here writes a subscription itself: the form runs the services'
checks and saves through `subscription_create/update`; the
buttons and the action call `subscription_ping`, `subscription_rotate_secret`
and `delivery_redeliver`. A secret is shown once, in a message (kept on the
server: MESSAGE_STORAGE is the session), when it is made.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import AdminURLFieldWidget
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse

from core.pagination import EstimatedCountPaginator

from . import services
from .models import ALL_EVENTS, Attempt, Delivery, Subscription

# The redeliver action runs inside the request: a "select all" over the
# whole log must not queue a million deliveries.
MAX_REDELIVER = 500

# What staff set on a subscription; the rest is the services' to write.
EDITABLE = ("url", "events", "description", "is_active")
VIEW_SUBSCRIPTION = "webhooks.view_subscription"
CHANGE_SUBSCRIPTION = "webhooks.change_subscription"


def _may_see_deliveries(user) -> bool:
    """The log is the subscriptions' own: whoever sees subscriptions in the
    admin (view or change, Django's rule) sees it, as the API's
    `view_subscription` does; `view_delivery` works too."""
    return (
        user.has_perm(VIEW_SUBSCRIPTION)
        or user.has_perm(CHANGE_SUBSCRIPTION)
        or (user.has_perm("webhooks.view_delivery"))
    )


# --- Subscriptions -------------------------------------------------------------


class SubscriptionForm(forms.ModelForm):
    """The fields staff set; the URL and event types pass the services'
    checks here, so a refusal shows on its field."""

    url = forms.URLField(
        max_length=2000,
        assume_scheme="https",
        widget=AdminURLFieldWidget(attrs={"size": 80}),
        help_text="An https address on the public internet.",
    )
    events = forms.MultipleChoiceField(
        choices=[(name, name) for name in [ALL_EVENTS, *services.EVENT_TYPES]],
        widget=forms.CheckboxSelectMultiple,
        help_text='"*" means every event type, those added later too; it stands alone.',
    )

    class Meta:
        model = Subscription
        fields = EDITABLE

    def clean_url(self):
        url = self.cleaned_data["url"]
        # An unchanged URL is not checked again (a name that does not resolve
        # today must not block editing the description); the sender checks
        # every address before each send anyway.
        if self.instance.pk is None or url != self.instance.url:
            try:
                services.check_target(url)
            except services.InvalidSubscription as invalid:
                raise forms.ValidationError(invalid.detail) from None
        return url

    def clean_events(self):
        try:
            return services.check_events(list(self.cleaned_data["events"]))
        except services.InvalidSubscription as invalid:
            raise forms.ValidationError(invalid.detail) from None


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    form = SubscriptionForm
    list_display = (
        "url",
        "event_types",
        "is_active",
        "failing_since",
        "disabled_reason",
        "created_at",
    )
    list_filter = ("is_active",)
    search_fields = ("url",)
    readonly_fields = (
        "disabled_reason",
        "failing_since",
        "created_by",
        "created_at",
        "updated_at",
        "previous_secret_expires_at",
    )

    def get_fieldsets(self, request, obj=None):
        fields = (None, {"fields": EDITABLE})
        if obj is None:
            return (fields,)
        return (
            fields,
            ("State", {"fields": ("disabled_reason", "failing_since")}),
            (
                "History",
                {
                    "fields": (
                        "created_by",
                        "created_at",
                        "updated_at",
                        "previous_secret_expires_at",
                    )
                },
            ),
        )

    @admin.display(description="events")
    def event_types(self, subscription):
        return ", ".join(subscription.events)

    # --- Saving goes through the services -------------------------------------------

    def save_model(self, request, obj, form, change):
        data = {name: form.cleaned_data[name] for name in EDITABLE}
        if change:
            # Only what changed: an unchanged URL is not checked again.
            changed = {name: value for name, value in data.items() if name in form.changed_data}
            services.subscription_update(subscription=obj, data=changed)
            return
        subscription, secret = services.subscription_create(**data, created_by=request.user)
        # The admin goes on with `obj` (messages, redirect, log entry).
        obj.pk = subscription.pk
        obj.created_by = subscription.created_by
        obj.created_at, obj.updated_at = subscription.created_at, subscription.updated_at
        messages.warning(
            request,
            f"The signing secret is {secret} — copy it now to the receiver: it will not be "
            "shown again.",
        )

    def delete_model(self, request, obj):
        services.subscription_delete(subscription=obj)

    def delete_queryset(self, request, queryset):
        for subscription in queryset:
            services.subscription_delete(subscription=subscription)

    def get_deleted_objects(self, objs, request):
        # The delivery log goes with its subscription, which the delete
        # permission covers (as in the API); the page counts the log instead
        # of listing every delivery and attempt of it.
        objs = list(objs)
        deliveries = Delivery.objects.filter(subscription__in=objs).count()
        counts = {
            Subscription._meta.verbose_name_plural: len(objs),
            Delivery._meta.verbose_name_plural: deliveries,
        }
        return [str(subscription) for subscription in objs], counts, set(), []

    # --- Buttons: a test event, a new secret ---------------------------------------

    def get_urls(self):
        return [
            path(
                "<int:object_id>/ping/",
                self.admin_site.admin_view(self.ping_view),
                name="webhooks_subscription_ping",
            ),
            path(
                "<int:object_id>/rotate-secret/",
                self.admin_site.admin_view(self.rotate_secret_view),
                name="webhooks_subscription_rotate_secret",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = {
            "can_view_deliveries": _may_see_deliveries(request.user),
            **(extra_context or {}),
        }
        return super().change_view(request, object_id, form_url, extra)

    def _changeable(self, request, object_id) -> Subscription:
        subscription = get_object_or_404(Subscription, pk=object_id)
        if not self.has_change_permission(request, subscription):
            raise PermissionDenied
        return subscription

    def _back(self, subscription) -> HttpResponseRedirect:
        return HttpResponseRedirect(
            reverse("admin:webhooks_subscription_change", args=[subscription.pk])
        )

    def ping_view(self, request, object_id):
        """Queues a `webhook.ping` for this subscription: a POST (the button)."""
        subscription = self._changeable(request, object_id)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        ping = services.subscription_ping(subscription=subscription)
        if subscription.is_active:
            self.message_user(request, f"Test event {ping.webhook_id} queued for {subscription}.")
        else:
            # Deliveries wait while a subscription is off.
            self.message_user(
                request,
                f"Test event {ping.webhook_id} queued, but {subscription} is off: it is sent "
                "once the subscription is on again.",
                messages.WARNING,
            )
        return self._back(subscription)

    def rotate_secret_view(self, request, object_id):
        """Asks first (the receiver must be given the new secret within 24
        hours), then rotates and shows the new secret once."""
        subscription = self._changeable(request, object_id)
        if request.method == "POST" and request.POST.get("confirm"):
            secret = services.subscription_rotate_secret(subscription=subscription)
            messages.warning(
                request,
                f"The new signing secret is {secret} — copy it now: it will not be shown "
                "again. The previous secret keeps signing for 24 hours.",
            )
            return self._back(subscription)
        context = {
            **self.admin_site.each_context(request),
            "title": "Rotate the signing secret?",
            "opts": self.opts,
            "original": subscription,
            "has_view_permission": True,
        }
        return TemplateResponse(
            request, "admin/webhooks/subscription/rotate_secret_confirmation.html", context
        )


# --- The delivery log ------------------------------------------------------------


class AttemptInline(admin.TabularInline):
    """Each try of a delivery, read-only: what the receiver answered."""

    model = Attempt
    extra = 0
    can_delete = False
    fields = readonly_fields = (
        "started_at",
        "status_code",
        "duration_ms",
        "error",
        "response_body",
    )
    verbose_name_plural = "attempts"

    def has_view_permission(self, request, obj=None):
        return _may_see_deliveries(request.user)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    """The log, read-only: deliveries are made by the fan-out and written by
    the sender. A redelivery is a new row for the same event."""

    list_display = (
        "created_at",
        "subscription",
        "event_type",
        "webhook_id",
        "status",
        "attempts",
        "last_status_code",
        "delivered_at",
    )
    list_filter = ("status", "subscription")
    list_select_related = ("subscription", "event")
    ordering = ("-created_at", "-id")
    sortable_by = ()  # read newest first, along the log's index
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER  # facet counts would scan the log
    inlines = (AttemptInline,)
    actions = ("redeliver",)
    fields = readonly_fields = (
        "subscription",
        "event_type",
        "webhook_id",
        "status",
        "attempts",
        "next_attempt_at",
        "last_status_code",
        "last_error",
        "created_at",
        "delivered_at",
        "redelivery_of",
    )

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("subscription", "event")

    @admin.display(description="event type")
    def event_type(self, delivery):
        return delivery.event.type

    @admin.display(description="webhook id")
    def webhook_id(self, delivery):
        return delivery.event.webhook_id

    def has_view_permission(self, request, obj=None):
        return _may_see_deliveries(request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the log goes with its subscription, or with age

    def has_redeliver_permission(self, request) -> bool:
        # What the API's redeliver needs: a redelivery changes what the
        # subscription's receiver gets.
        return request.user.has_perm(CHANGE_SUBSCRIPTION)

    @admin.action(description="Redeliver selected deliveries", permissions=["redeliver"])
    def redeliver(self, request, queryset):
        deliveries = list(queryset[: MAX_REDELIVER + 1])
        if len(deliveries) > MAX_REDELIVER:
            self.message_user(
                request,
                f"Select at most {MAX_REDELIVER} deliveries at a time: nothing was queued. "
                "Narrow the list with a filter first.",
                messages.ERROR,
            )
            return
        for delivery in deliveries:
            services.delivery_redeliver(delivery=delivery)
        self.message_user(request, f"Queued {len(deliveries)} redelivery(ies).", messages.SUCCESS)
