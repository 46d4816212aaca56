from django.http import Http404, HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from drf_standardized_errors.openapi_validation_errors import extend_validation_errors
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from core.openapi import client_error_response
from core.permissions import StaffModelPermissions, staff_permission
from core.replicas import ReplicaListMixin, read_with_fallback

from .. import cache, selectors, services
from ..filters import ProductFilter
from . import serializers as s

InsufficientStockResponse = client_error_response(409, "insufficient_stock")
ProductInUseResponse = client_error_response(409, "product_in_use")


@extend_schema_view(
    list=extend_schema(
        summary="List products",
        description="Active products; staff see inactive ones too, and the stock figures.",
    ),
    retrieve=extend_schema(summary="One product"),
)
@extend_schema(tags=["products"])
@extend_validation_errors(["invalid"], field_name="in_stock", actions=["list"])
@extend_validation_errors(["invalid"], field_name="is_active", actions=["list"])
@extend_validation_errors(
    ["invalid", "min_value"], field_name="page", actions=["list", "stock_movements"]
)
@extend_validation_errors(
    ["invalid", "min_value"], field_name="page_size", actions=["list", "stock_movements"]
)
class ProductViewSet(
    ReplicaListMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """The catalogue: anyone reads it, staff manage it. Stock changes only
    through stock adjustments (here) and orders."""

    # Reads: anyone (the queryset decides what each caller sees); writes:
    # staff with add/change/delete_product, as in the admin.
    permission_classes = [StaffModelPermissions]
    filterset_class = ProductFilter
    # Ids are integers; a longer run of digits than a bigint holds is a 404,
    # not a database error.
    lookup_value_regex = r"[0-9]{1,18}"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self):
        return selectors.product_list(user=self.request.user)

    def filter_queryset(self, queryset):
        # The filters are the list's query parameters; one product (and
        # acting on it) needs none of them, as the cached detail ignores them.
        return super().filter_queryset(queryset) if self.action == "list" else queryset

    def get_serializer_class(self):
        if self.request and selectors.can_see_stock(self.request.user):
            return s.StaffProductSerializer
        return s.ProductSerializer

    def retrieve(self, request, pk=None):
        # The product's JSON from the cache (inventory/cache.py), or rendered
        # and stored: the same bytes, and the same 404, as get_object() and
        # the serializer (the view's permissions have no object-level rule).
        body = cache.product_detail_json(
            pk=int(pk), staff=selectors.can_see_stock(request.user), render=_render_product
        )
        if body is None:
            raise Http404("No Product matches the given query.")
        return HttpResponse(body, content_type="application/json")

    @extend_schema(
        request=s.ProductWriteSerializer,
        responses={201: s.StaffProductSerializer},
        summary="Create a product (staff)",
    )
    def create(self, request):
        serializer = s.ProductWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        product = services.product_create(**serializer.validated_data)
        return Response(s.StaffProductSerializer(product).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        request=s.ProductWriteSerializer,
        responses={200: s.StaffProductSerializer},
        summary="Change a product's catalogue fields (staff)",
    )
    def partial_update(self, request, pk=None):
        product = self.get_object()
        serializer = s.ProductWriteSerializer(product, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        product = services.product_update(product=product, data=serializer.validated_data)
        return Response(s.StaffProductSerializer(product).data)

    @extend_schema(
        responses={
            204: OpenApiResponse(description="Deleted."),
            409: OpenApiResponse(
                ProductInUseResponse,
                description="The product was ordered: deactivate it instead.",
            ),
        },
        summary="Delete a product that was never ordered (staff)",
    )
    def destroy(self, request, pk=None):
        services.product_delete(product=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=s.StockAdjustmentSerializer,
        responses={
            201: s.StockAdjustmentResultSerializer,
            409: OpenApiResponse(
                InsufficientStockResponse,
                description="On-hand stock would fall below what is reserved.",
            ),
        },
        summary="Adjust on-hand stock (staff)",
    )
    @action(
        detail=True,
        methods=["post"],
        url_path="stock-adjustments",
        permission_classes=[staff_permission(services.ADJUST_STOCK)],
        filter_backends=[],
    )
    def stock_adjustments(self, request, pk=None):
        product = self.get_object()
        serializer = s.StockAdjustmentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        product.movement = services.stock_adjust(
            product=product, actor=request.user, **serializer.validated_data
        )
        return Response(
            s.StockAdjustmentResultSerializer(product).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        responses={200: s.StockMovementSerializer(many=True)},
        summary="The product's stock ledger, oldest first (staff)",
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="stock-movements",
        permission_classes=[staff_permission("inventory.view_stockmovement")],
        filter_backends=[],
    )
    def stock_movements(self, request, pk=None):
        def read():
            page = self.paginate_queryset(selectors.stock_movement_list(product=self.get_object()))
            return self.get_paginated_response(s.StockMovementSerializer(page, many=True).data)

        return read_with_fallback(read, user=request.user)


_json = JSONRenderer().render


def _render_product(product, staff: bool) -> bytes:
    """What `retrieve` on the database path answers: the viewer's serializer
    through DRF's JSON renderer."""
    serializer = s.StaffProductSerializer if staff else s.ProductSerializer
    return _json(serializer(product).data)
