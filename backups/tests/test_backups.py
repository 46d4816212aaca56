"""Backups to object storage (SPEC §10), against a real S3 protocol server:
moto's server mode, started by the tests, spoken to by django-storages and
boto3 as they would speak to S3 — no mock of boto3."""

import gzip
import io
import json
import socket
import uuid

import boto3
import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from moto.server import ThreadedMotoServer

from accounts.models import User
from accounts.tests.factories import StaffFactory, UserFactory
from backups import copies, exports, tasks
from backups.models import Export, OrderCopy
from core.models import Event
from inventory.models import Product, StockMovement
from inventory.tests.factories import ProductFactory
from inventory.tests.helpers import assert_ledger_explains
from orders import services as orders
from orders.models import Order, OrderEvent, OrderLine
from orders.statuses import OrderStatus
from orders.tests.factories import place_order

pytestmark = pytest.mark.django_db

S = OrderStatus


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class S3:
    """moto's S3 server on a port of this machine, and a client to look. A
    bucket of its own: moto keeps every bucket in this process."""

    def __init__(self):
        self.bucket = f"orders-backups-{uuid.uuid4().hex[:12]}"
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.server = None
        self.client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def up(self):
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()

    def down(self):
        self.server.stop()

    def keys(self, prefix="") -> list[str]:
        found = self.client.list_objects_v2(Bucket=self.bucket, Prefix=f"backups/{prefix}")
        return sorted(item["Key"].removeprefix("backups/") for item in found.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=f"backups/{key}")["Body"].read()

    def json(self, key: str) -> dict:
        return json.loads(self.read(key))


@pytest.fixture
def s3(settings):
    s3 = S3()
    s3.up()
    s3.client.create_bucket(Bucket=s3.bucket)
    settings.STORAGES = {
        **settings.STORAGES,
        "backups": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": s3.bucket,
                "location": "backups",
                "endpoint_url": s3.endpoint,
                "region_name": "us-east-1",
                "access_key": "testing",
                "secret_key": "testing",
                "file_overwrite": True,
                "default_acl": None,
                "querystring_auth": True,
                "signature_version": "s3v4",
                "addressing_style": "path",
            },
        },
    }
    yield s3
    s3.down()


def copy_now() -> dict:
    return tasks.copy_orders.apply().get()


# --- Copies of each order -----------------------------------------------------------


def test_a_copy_appears_after_an_order_is_placed_and_after_each_move(s3):
    staff = StaffFactory()
    order = place_order(UserFactory(), (ProductFactory(sku="MUG-1", stock=5), 2))
    assert copy_now() == {"copied": 1, "failed": 0}

    first = s3.json(f"orders/{order.pk}.json")
    assert (first["sequence"], first["order"]["status"]) == (1, "pending")
    assert first["order"]["items"][0]["sku"] == "MUG-1"
    assert [e["type"] for e in first["events"]] == ["created"]

    orders.order_transition(order=order, to_status=S.PROCESSING, actor=None)
    orders.order_transition(order=order, to_status=S.SHIPPED, actor=staff)
    copy_now()

    latest = s3.json(f"orders/{order.pk}.json")
    assert (latest["sequence"], latest["order"]["status"]) == (3, "shipped")
    assert [e["to_status"] for e in latest["events"]] == ["pending", "processing", "shipped"]
    assert copy_now() == {"copied": 0, "failed": 0}  # nothing is due any more


def test_a_copy_never_goes_back_to_an_older_state():
    order = place_order(UserFactory(), (ProductFactory(stock=5), 1))
    orders.order_transition(order=order, to_status=S.PROCESSING, actor=None)
    events = list(Event.objects.filter(aggregate="order").order_by("id"))
    # A worker publishes the later event before another publishes the earlier.
    copies.copies_due_from_events([events[1]])
    copies.copies_due_from_events([events[0]])
    assert OrderCopy.objects.get(order_id=order.pk).due_sequence == 2
    OrderCopy.objects.filter(order_id=order.pk).update(copied_sequence=2)
    copies.copies_due_from_events([events[0]])
    assert not OrderCopy.objects.get(order_id=order.pk).is_due


def test_with_the_storage_down_copies_wait_and_catch_up_when_it_is_back(s3):
    placed = [place_order(UserFactory(), (ProductFactory(stock=5), 1)) for _ in range(3)]
    s3.down()

    assert copy_now()["failed"] == 3
    assert all(copy.is_due and copy.last_error for copy in OrderCopy.objects.all())

    s3.up()  # moto keeps its buckets in this process
    assert copy_now() == {"copied": 3, "failed": 0}
    assert s3.keys("orders/") == sorted(f"orders/{order.pk}.json" for order in placed)
    assert not OrderCopy.objects.exclude(last_error="").exists()


# --- Exports and the restore ----------------------------------------------------------


def shop_history() -> dict:
    """A few customers, products and orders in every status, with histories."""
    staff = StaffFactory(email="boss@example.com")
    mug = ProductFactory(sku="MUG-1", name="Mug", stock=40, low_stock_threshold=3)
    cap = ProductFactory(sku="CAP-1", name="Cap", stock=30)
    customers = [UserFactory(email=f"c{n}@example.com") for n in range(3)]
    made = []
    for n in range(12):
        order = place_order(
            customers[n % 3], (mug, 1 + n % 2), (cap, 1), shipping_address=f"{n} Road"
        )
        made.append(order)
    orders.order_transition(order=made[0], to_status=S.PROCESSING, actor=None)
    for order in made[1:3]:
        orders.order_transition(order=order, to_status=S.PROCESSING, actor=None)
        orders.order_transition(order=order, to_status=S.SHIPPED, actor=staff)
    orders.order_transition(order=made[3], to_status=S.CANCELLED, actor=made[3].customer)
    orders.order_update_details(order=made[4], actor=staff, notes="Gift")
    # A customer who signed up by SMS has a phone and no e-mail.
    texter = User.objects.create(phone="+14155550123", email=None)
    place_order(texter, (cap, 2))
    return {"staff": staff}


def snapshot() -> dict:
    """Orders, lines, totals and histories as stored, by order id."""
    return {
        "orders": sorted(
            Order.objects.values_list(
                "pk",
                "customer__email",
                "status",
                "total",
                "shipping_address",
                "notes",
                "created_at",
                "event_sequence",
            )
        ),
        "lines": sorted(
            OrderLine.objects.values_list(
                "order_id", "product__sku", "sku", "name", "unit_price", "quantity", "line_total"
            )
        ),
        "events": sorted(
            OrderEvent.objects.values_list(
                "order_id", "type", "from_status", "to_status", "actor__email", "note", "created_at"
            )
        ),
        "products": sorted(
            Product.objects.values_list("pk", "sku", "price", "stock_on_hand", "stock_reserved")
        ),
    }


def wipe_the_shop() -> None:
    """An empty database for orders and products (staff accounts stay)."""
    StockMovement.objects.all().delete()
    OrderEvent.objects.all().delete()
    OrderLine.objects.all().delete()
    Order.objects.all().delete()
    Product.objects.all().delete()
    User.objects.filter(is_staff=False).delete()


def test_an_export_restores_into_an_empty_database_with_equal_orders(s3):
    shop_history()
    before = snapshot()
    out = io.StringIO()
    call_command("backup_orders", stdout=out)
    export = Export.objects.get()
    assert f"Exported 13 orders to {export.name}" in out.getvalue()
    manifest = s3.json(export.manifest_name)
    assert (manifest["count"], manifest["since"]) == (13, None)
    lines = gzip.decompress(s3.read(export.name)).splitlines()
    assert len(lines) == 13 and json.loads(lines[0])["order"]["id"] == min(
        o[0] for o in before["orders"]
    )

    wipe_the_shop()
    out = io.StringIO()
    call_command("restore_orders", export.name, stdout=out)

    assert snapshot() == before
    assert "Restored 13 orders" in out.getvalue()
    for product in Product.objects.all():
        assert_ledger_explains(product)
    # New rows take ids after the restored ones.
    assert place_order(UserFactory(), (Product.objects.get(sku="MUG-1"), 1)).pk > max(
        o[0] for o in before["orders"]
    )


def test_a_restore_refuses_a_database_with_orders_unless_merging_and_runs_twice_safely(s3):
    shop_history()
    export = exports.orders_export()
    with pytest.raises(CommandError, match="--merge"):
        call_command("restore_orders", export.name, stdout=io.StringIO())

    before = snapshot()
    out = io.StringIO()
    call_command("restore_orders", export.name, "--merge", stdout=out)
    assert "Restored 0 orders" in out.getvalue() and "13 orders were already here" in out.getvalue()
    assert snapshot() == before

    # Merging into a database that lost some orders brings exactly those back.
    lost = list(Order.objects.filter(status=S.PENDING).order_by("pk")[:2])
    for order in lost:
        orders.order_cancel(order=order, actor=order.customer)
    cancelled_ids = [order.pk for order in lost]
    StockMovement.objects.filter(order_id__in=cancelled_ids).delete()
    OrderEvent.objects.filter(order_id__in=cancelled_ids).delete()
    OrderLine.objects.filter(order_id__in=cancelled_ids).delete()
    Order.objects.filter(pk__in=cancelled_ids).delete()
    call_command("restore_orders", export.name, "--merge", stdout=io.StringIO())
    assert set(Order.objects.filter(pk__in=cancelled_ids).values_list("status", flat=True)) == {
        "pending"
    }
    for product in Product.objects.all():
        assert_ledger_explains(product)


def test_a_damaged_export_is_refused_by_its_checksum_and_restores_nothing(s3):
    shop_history()
    export = exports.orders_export()
    damaged = bytearray(s3.read(export.name))
    damaged[len(damaged) // 2] ^= 0xFF
    s3.client.put_object(Bucket=s3.bucket, Key=f"backups/{export.name}", Body=bytes(damaged))
    wipe_the_shop()

    with pytest.raises(CommandError, match="does not match its manifest"):
        call_command("restore_orders", export.name, stdout=io.StringIO())

    assert not Order.objects.exists() and not Product.objects.exists()


def test_since_exports_only_the_orders_changed_since(s3):
    old = place_order(UserFactory(), (ProductFactory(stock=5), 1))
    Order.objects.filter(pk=old.pk).update(updated_at="2026-01-01T00:00:00Z")
    new = place_order(UserFactory(), (ProductFactory(stock=5), 1))

    call_command("backup_orders", "--since", "2026-06-01", stdout=io.StringIO())

    export = Export.objects.get()
    ids = [
        json.loads(line)["order"]["id"]
        for line in gzip.decompress(s3.read(export.name)).splitlines()
    ]
    assert ids == [new.pk]
    assert s3.json(export.manifest_name)["since"].startswith("2026-06-01")


def test_the_default_storage_is_a_folder_and_a_restore_takes_a_local_file(settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "backups": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path), "allow_overwrite": True},
        },
    }
    shop_history()
    before = snapshot()
    export = exports.orders_export()
    copy_now()
    assert (tmp_path / export.name).is_file()
    assert len(list((tmp_path / "orders").glob("*.json"))) == 13

    wipe_the_shop()
    call_command("restore_orders", str(tmp_path / export.name), stdout=io.StringIO())
    assert snapshot() == before


# --- The admin ---------------------------------------------------------------------


def test_staff_who_may_export_see_the_exports_and_download_one_by_a_presigned_link(s3, client):
    place_order(UserFactory(), (ProductFactory(stock=5), 1))
    export = exports.orders_export()
    client.force_login(StaffFactory(perms=["orders.export_order"]))

    listing = client.get(reverse("admin:backups_export_changelist"))
    download = client.get(reverse("admin:backups_export_download", args=[export.pk]))

    assert listing.status_code == 200 and export.name in listing.content.decode()
    assert download.status_code == 302
    assert "X-Amz-Signature=" in download["Location"]
    assert download["Location"].startswith(s3.endpoint)


def test_staff_without_the_export_permission_get_no_download(s3, client):
    export = exports.orders_export()
    client.force_login(StaffFactory(perms=["orders.view_order"]))
    refused = client.get(reverse("admin:backups_export_download", args=[export.pk]))
    assert refused.status_code == 403
