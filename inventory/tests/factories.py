from decimal import Decimal

import factory

from inventory import services
from inventory.models import Product


class ProductFactory(factory.django.DjangoModelFactory):
    """A product; `stock=N` restocks it through the service, so its ledger
    explains its stock like any real product's."""

    class Meta:
        model = Product
        skip_postgeneration_save = True

    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    name = factory.Sequence(lambda n: f"Product {n}")
    price = Decimal("10.00")
    low_stock_threshold = 5

    @factory.post_generation
    def stock(product, create, extracted, **kwargs):
        if create and extracted:
            services.stock_adjust(product=product, delta=extracted, reason="restock", actor=None)
