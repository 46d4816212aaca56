import factory
from django.conf import settings

from accounts.tests.factories import UserFactory
from orders.models import Order


class OrderFactory(factory.django.DjangoModelFactory):
    """A bare order row, without lines or reservations."""

    class Meta:
        model = Order

    customer = factory.SubFactory(UserFactory)
    currency = factory.LazyFunction(lambda: settings.CURRENCY)


_CUSTOMER = object()


def place_order(customer, *lines, actor=_CUSTOMER, **kwargs) -> Order:
    """An order placed through the service, of `(product, quantity)` lines;
    placed by the customer themself unless `actor` says otherwise."""
    from orders import services

    return services.order_place(
        customer=customer,
        items=[{"product_id": product.pk, "quantity": quantity} for product, quantity in lines],
        actor=customer if actor is _CUSTOMER else actor,
        **kwargs,
    )
