from decimal import Decimal

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import User
from inventory import services as inventory
from inventory.models import Product

# sku, name, price, stock on hand, low-stock threshold, active
DEMO_PRODUCTS = [
    ("MUG-001", "Enamel mug, blue", "12.50", 120, 10, True),
    ("MUG-002", "Enamel mug, red", "12.50", 8, 10, True),
    ("TEE-S", "Logo T-shirt, S", "19.99", 40, 5, True),
    ("TEE-M", "Logo T-shirt, M", "19.99", 60, 5, True),
    ("TEE-L", "Logo T-shirt, L", "19.99", 3, 5, True),
    ("CAP-001", "Baseball cap", "15.00", 75, 10, True),
    ("BAG-001", "Canvas tote bag", "9.90", 200, 20, True),
    ("BOT-001", "Steel water bottle", "24.00", 0, 5, True),
    ("NBK-A5", "Notebook A5, dotted", "7.45", 300, 25, True),
    ("PEN-003", "Fountain pen", "39.00", 15, 3, True),
    ("STK-PACK", "Sticker pack", "3.99", 500, 50, True),
    ("HOO-M", "Hoodie, M (discontinued)", "49.00", 2, 0, False),
]

DEMO_CUSTOMERS = [
    ("customer@example.com", "Casey", "Customer"),
    ("shopper@example.com", "Sam", "Shopper"),
]
DEMO_CUSTOMER_PASSWORD = "customer-demo-password"  # noqa: S105 (demo data)


class Command(BaseCommand):
    help = "Load demo products and customers (safe to run twice: existing ones are kept)."

    def handle(self, *args, **options):
        products = self.seed_products()
        customers = self.seed_customers()
        self.stdout.write(
            f"Demo data ready: {products} new products, {customers} new customers "
            f"(customer login: {DEMO_CUSTOMERS[0][0]} / {DEMO_CUSTOMER_PASSWORD})."
        )

    @transaction.atomic
    def seed_products(self) -> int:
        existing = set(Product.objects.values_list("sku", flat=True))
        created = 0
        for sku, name, price, stock, threshold, active in DEMO_PRODUCTS:
            if sku in existing:
                continue
            product = inventory.product_create(
                sku=sku,
                name=name,
                price=Decimal(price),
                description=f"Demo product: {name.lower()}.",
                is_active=active,
                low_stock_threshold=threshold,
            )
            if stock:
                inventory.stock_adjust(
                    product=product, delta=stock, reason="restock", actor=None, note="Demo data"
                )
            created += 1
        return created

    def seed_customers(self) -> int:
        created = 0
        for email, first_name, last_name in DEMO_CUSTOMERS:
            if User.objects.filter(email=email).exists():
                continue
            User.objects.create_user(
                email, DEMO_CUSTOMER_PASSWORD, first_name=first_name, last_name=last_name
            )
            created += 1
        return created
