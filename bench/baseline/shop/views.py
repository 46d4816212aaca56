from rest_framework import mixins, viewsets

from .models import Order
from .serializers import OrderSerializer


class OrderViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Orders: customers see and place their own, staff see everyone's."""

    serializer_class = OrderSerializer

    def get_queryset(self):
        queryset = Order.objects.select_related("customer").prefetch_related("items__product")
        if self.request.user.is_staff:
            return queryset
        return queryset.filter(customer=self.request.user)

    def perform_create(self, serializer):
        serializer.save(customer=self.request.user)
