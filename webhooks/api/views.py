from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from drf_standardized_errors.openapi_validation_errors import extend_validation_errors
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import get_object_or_404
from rest_framework.response import Response
from rest_framework.serializers import ValidationError

from core.permissions import staff_permission

from .. import services
from ..models import Delivery, Subscription
from . import serializers as s
from .permissions import StaffOnlyModelPermissions

CHANGE_SUBSCRIPTION = "webhooks.change_subscription"
VIEW_SUBSCRIPTION = "webhooks.view_subscription"

# Like `id`: digits only, no more than a bigint holds (anything else is a 404).
delivery_id_parameter = OpenApiParameter(
    "delivery_id",
    OpenApiTypes.STR,
    OpenApiParameter.PATH,
    pattern=r"^[0-9]{1,18}$",
    description="A delivery's id.",
)


def _refused(invalid: services.InvalidSubscription) -> ValidationError:
    """A subscription the services refuse: a 400 on the field at fault."""
    return ValidationError({invalid.field: [invalid.detail]}, code="invalid")


@extend_schema_view(
    list=extend_schema(summary="List webhook subscriptions (staff)"),
    retrieve=extend_schema(summary="One webhook subscription (staff)"),
)
@extend_schema(tags=["webhooks"])
# The services' refusals: a URL that is not a public https address (`url`,
# `invalid` already documented) and unknown event types (`events`).
@extend_validation_errors(["invalid"], field_name="events", actions=["create", "partial_update"])
@extend_validation_errors(
    ["invalid", "min_value"], field_name="page", actions=["list", "deliveries"]
)
@extend_validation_errors(
    ["invalid", "min_value"], field_name="page_size", actions=["list", "deliveries"]
)
class SubscriptionViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Webhook subscriptions (SPEC §9): staff only, under the model's
    permissions, reads included. The secret is shown on create and on
    rotation, never again."""

    queryset = Subscription.objects.all()
    serializer_class = s.SubscriptionSerializer
    permission_classes = [StaffOnlyModelPermissions]
    filter_backends = []
    lookup_value_regex = r"[0-9]{1,18}"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    @extend_schema(
        request=s.SubscriptionWriteSerializer,
        responses={201: s.SubscriptionCreatedSerializer},
        summary="Subscribe a URL to events (staff)",
        description="The answer carries the signing secret, this once.",
    )
    def create(self, request):
        serializer = s.SubscriptionWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            subscription, secret = services.subscription_create(
                **serializer.validated_data, created_by=request.user
            )
        except services.InvalidSubscription as invalid:
            raise _refused(invalid) from None
        subscription.secret = secret
        return Response(
            s.SubscriptionCreatedSerializer(subscription).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        request=s.SubscriptionWriteSerializer,
        responses={200: s.SubscriptionSerializer},
        summary="Change a subscription (staff)",
        description="`is_active: true` turns a disabled subscription on again and clears "
        "why it was disabled.",
    )
    def partial_update(self, request, pk=None):
        subscription = self.get_object()
        serializer = s.SubscriptionWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        try:
            subscription = services.subscription_update(
                subscription=subscription, data=serializer.validated_data
            )
        except services.InvalidSubscription as invalid:
            raise _refused(invalid) from None
        return Response(s.SubscriptionSerializer(subscription).data)

    @extend_schema(
        responses={204: OpenApiResponse(description="Deleted, with its delivery log.")},
        summary="Delete a subscription (staff)",
    )
    def destroy(self, request, pk=None):
        services.subscription_delete(subscription=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=None,
        responses={200: s.SecretSerializer},
        summary="Rotate the signing secret (staff)",
        description="A new secret, shown this once. The previous one keeps signing for 24 "
        "hours (both signatures are sent), so receivers can switch without losing a delivery.",
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="rotate-secret",
        permission_classes=[staff_permission(CHANGE_SUBSCRIPTION)],
    )
    def rotate_secret(self, request, pk=None):
        secret = services.subscription_rotate_secret(subscription=self.get_object())
        return Response(s.SecretSerializer({"secret": secret}).data)

    @extend_schema(
        request=None,
        responses={202: s.PingSerializer},
        summary="Send a test event (staff)",
        description="Queues a `webhook.ping` for this subscription alone.",
    )
    @action(
        detail=True, methods=["post"], permission_classes=[staff_permission(CHANGE_SUBSCRIPTION)]
    )
    def ping(self, request, pk=None):
        ping = services.subscription_ping(subscription=self.get_object())
        return Response(
            s.PingSerializer({"event_id": ping.webhook_id}).data, status=status.HTTP_202_ACCEPTED
        )

    @extend_schema(
        responses={200: s.DeliverySerializer(many=True)},
        summary="The subscription's delivery log, newest first (staff)",
    )
    @action(detail=True, methods=["get"], permission_classes=[staff_permission(VIEW_SUBSCRIPTION)])
    def deliveries(self, request, pk=None):
        deliveries = (
            self.get_object().deliveries.select_related("event").order_by("-created_at", "-id")
        )
        page = self.paginate_queryset(deliveries)
        return self.get_paginated_response(s.DeliverySerializer(page, many=True).data)

    @extend_schema(
        request=None,
        parameters=[delivery_id_parameter],
        responses={202: s.DeliverySerializer},
        summary="Send a delivery's event again (staff)",
        description="A new delivery of the same event, with the same `webhook-id`: the "
        "receiver can tell it is the same event. A delivery of another subscription is a 404.",
    )
    @action(
        detail=True,
        methods=["post"],
        url_path=r"deliveries/(?P<delivery_id>[0-9]{1,18})/redeliver",
        permission_classes=[staff_permission(CHANGE_SUBSCRIPTION)],
    )
    def redeliver(self, request, pk=None, delivery_id=None):
        delivery = get_object_or_404(
            Delivery.objects.select_related("subscription", "event"),
            pk=delivery_id,
            subscription=self.get_object(),
        )
        redelivery = services.delivery_redeliver(delivery=delivery)
        return Response(s.DeliverySerializer(redelivery).data, status=status.HTTP_202_ACCEPTED)
