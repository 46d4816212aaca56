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
