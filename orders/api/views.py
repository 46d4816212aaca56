from django.http import Http404, HttpResponse
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
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from core.openapi import client_error_response
from core.replicas import ReplicaListMixin, read_with_fallback

from .. import cache, idempotency, selectors, services
from ..filters import OrderFilter
from ..models import Order
from . import serializers as s

PlacementRefusedResponse = client_error_response(409, "insufficient_stock", "limit_exceeded")
OpenOrdersResponse = client_error_response(429, "throttled", "too_many_open_orders")
InvalidTransitionResponse = client_error_response(409, "invalid_transition")
IdempotencyKeyReusedResponse = client_error_response(422, "idempotency_key_reused")

idempotency_key_parameter = OpenApiParameter(
    idempotency.HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description=(
        "Up to 255 printable characters. Retrying the same request with the same key "
        "within 24 hours answers the first response again, with `Idempotent-Replayed: true`, "
        "and makes no second order; the same key with another body is a 422."
    ),
)
moved = OpenApiResponse(
    InvalidTransitionResponse, description="The status table does not allow this move."
)


@extend_schema_view(
    list=extend_schema(
        summary="List orders",
        description="A customer's own orders; staff see every order. Newest first.",
    ),
    retrieve=extend_schema(summary="One order with its items"),
)
@extend_schema(tags=["orders"])
@extend_validation_errors(
    ["does_not_exist", "inactive", "duplicate"],
    field_name="items.INDEX.product_id",
    actions=["create"],
)
@extend_validation_errors(["does_not_exist"], field_name="customer_id", actions=["create"])
@extend_validation_errors(["invalid"], field_name="Idempotency-Key", actions=["create"])
@extend_validation_errors(["invalid", "min_value"], field_name="page", actions=["list", "events"])
@extend_validation_errors(
    ["invalid", "min_value"], field_name="page_size", actions=["list", "events"]
)
class OrderViewSet(
    ReplicaListMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Orders: customers place and follow their own, staff run all of them.
    Another customer's order answers 404."""

    serializer_class = s.OrderSerializer
    filterset_class = OrderFilter
    # Placing, changing and cancelling orders never save the acting user (the
    # limits lock the customer's row): the user comes from accounts.auth_cache.
    authenticate_writes_from_cache = True
    lookup_value_regex = r"[0-9]{1,18}"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the OpenAPI generator
            return Order.objects.none()
        return selectors.order_list(user=self.request.user)

    def filter_queryset(self, queryset):
        # The filters are the list's query parameters; reading one order
        # (and acting on it) needs none of them, nor the cost of building them.
        return super().filter_queryset(queryset) if self.action == "list" else queryset

    def retrieve(self, request, pk=None):
        # The order's JSON from the cache (orders/cache.py), or rendered and
        # stored: the same bytes, and the same 404, as get_object() and the
        # serializer (the view's permissions have no object-level rule).
        body = cache.order_detail_json(pk=int(pk), viewer=request.user)
        if body is None:
            raise Http404("No Order matches the given query.")
        return HttpResponse(body, content_type="application/json")

    def _respond(self, order, status_code=status.HTTP_200_OK):
        """The order as it now is, freshly read with its items."""
        order = self.get_queryset().get(pk=order.pk)
        return Response(s.OrderSerializer(order).data, status=status_code)

    @extend_schema(
        request=s.OrderCreateSerializer,
        parameters=[idempotency_key_parameter],
        responses={
            201: s.OrderSerializer,
            409: OpenApiResponse(
                PlacementRefusedResponse,
                description="Not enough stock for a line (`insufficient_stock`), or more units "
                "in a line than a customer may order (`limit_exceeded`); nothing was reserved.",
            ),
            429: OpenApiResponse(
                OpenOrdersResponse,
                description="Too many requests (`throttled`), or the customer already holds the "
                "most open orders one account may have (`too_many_open_orders`).",
            ),
            422: OpenApiResponse(
                IdempotencyKeyReusedResponse,
                description="The Idempotency-Key was used with another request body.",
            ),
        },
        summary="Place an order",
    )
    def create(self, request):
        key = idempotency.idempotency_key_check(request.headers.get(idempotency.HEADER))
        serializer = s.OrderCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        customer = services.order_customer_for(
            actor=request.user, customer_id=data.get("customer_id")
        )

        def place():
            order = services.order_place(
                customer=customer,
                items=data["items"],
                shipping_address=data["shipping_address"],
                notes=data["notes"],
                actor=request.user,
            )
            # The order comes back with its lines: shown without reading it again.
            return status.HTTP_201_CREATED, s.OrderSerializer(order).data

        outcome = idempotency.run_once(user=request.user, key=key, data=request.data, produce=place)
        response = Response(outcome.body, status=outcome.status)
        if outcome.replayed:
            response[idempotency.REPLAYED_HEADER] = "true"
        return response

    @extend_schema(
        request=s.OrderUpdateSerializer,
        responses={200: s.OrderSerializer, 409: moved},
        summary="Change an order",
        description=(
            "Staff: `status` (needs `orders.move_order`; moves follow the status table) and "
            "the address and notes (`orders.change_order`). The owner: the address and notes "
            "while the order is pending; sending `status` is a 403."
        ),
    )
    def partial_update(self, request, pk=None):
        order = self.get_object()
        sent = request.data if isinstance(request.data, dict) else {}  # a JSON `null` too
        if "status" in sent and not services.can_move_orders(request.user):
            # Refused before the body is checked: a customer learns nothing
            # from sending statuses, valid or not.
            raise PermissionDenied(
                "Only staff with the move permission may change an order's status; "
                "cancel it instead."
            )
        serializer = s.OrderUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        order = services.order_change(order=order, actor=request.user, **serializer.validated_data)
        return self._respond(order)

    @extend_schema(
        request=s.OrderCancelSerializer,
        responses={200: s.OrderSerializer, 409: moved},
        summary="Cancel an order",
        description="The owner while it is pending; staff while it is pending or processing. "
        "Its reserved stock is released.",
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def cancel(self, request, pk=None):
        return self._cancel(request)

    @extend_schema(
        request=s.OrderCancelSerializer,
        responses={200: s.OrderSerializer, 409: moved},
        summary="Cancel an order (orders are never deleted)",
        description="The same as `POST /orders/{id}/cancel/`.",
    )
    def destroy(self, request, pk=None):
        return self._cancel(request)

    def _cancel(self, request):
        order = self.get_object()
        serializer = s.OrderCancelSerializer(data=request.data or {})
        serializer.is_valid(raise_exception=True)
        order = services.order_cancel(
            order=order, actor=request.user, reason=serializer.validated_data["reason"]
        )
        return self._respond(order)

    @extend_schema(
        responses={200: s.OrderEventSerializer(many=True)},
        summary="The order's history, oldest first",
    )
    @action(detail=True, methods=["get"], filter_backends=[])
    def events(self, request, pk=None):
        def read():
            page = self.paginate_queryset(selectors.order_event_list(order=self.get_object()))
            return self.get_paginated_response(s.OrderEventSerializer(page, many=True).data)

        return read_with_fallback(read, user=request.user)
