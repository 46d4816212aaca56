"""Full exports and the restore (SPEC §10).

An export is `exports/orders-<UTC date-time>.jsonl.gz`, one order a line
(`documents.export_document`), and `…manifest.json` with the number of
orders, the file's SHA-256, when it was made and since when. It is written
as it is read: orders in keyset chunks, gzip into a temporary file while the
digest is taken, then handed to the storage (S3 uploads it in parts). Memory
holds one chunk, whatever the number of orders.

A restore checks the file against its manifest, then loads customers,
products, orders with their lines and history in bulk, chunk by chunk. It
refuses a database that already has orders or products unless told to merge
(orders already there are skipped), so running it twice changes nothing the
second time. Then it makes the stock explain itself: one correction movement
per product brings on-hand stock to the exported figure (never below what
the restored open orders hold), and a reserve movement per line of each
restored pending or processing order holds their units, so the ledger adds
up to the products' figures. The ledger before the export is not restored;
the report says so.
"""

import gzip
import hashlib
import json
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path

from django.contrib.auth.hashers import make_password
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.management.color import no_style
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts.models import User
from core.replicas import read_with_fallback
from inventory.cache import products_changed
from inventory.models import Product, StockMovement
from orders.models import Order, OrderEvent, OrderLine
from orders.statuses import HOLDING_STOCK

from .documents import FORMAT, backup_queryset, export_document
from .models import Export
from .storage import backup_storage

EXPORT_CHUNK = 2000
RESTORE_CHUNK = 1000
Kind = StockMovement.Kind


class RestoreRefused(Exception):
    """The restore will not run: the message says why, and what to do."""


def manifest_name(name: str) -> str:
    return name.removesuffix(".jsonl.gz") + ".manifest.json"


def _chunks(orders, size: int) -> Iterator[list[Order]]:
    """`orders` with their documents' relations, `size` at a time, by id.
    Each customer is loaded once a chunk, not once an order (a join would
    build, and parse the phone of, a customer per order: a tenth of the
    export's time)."""
    last = 0
    while True:
        page = backup_queryset(orders.filter(pk__gt=last).order_by("pk")).select_related(None)
        chunk = read_with_fallback(lambda page=page: _with_customers(list(page[:size])))
        if not chunk:
            return
        yield chunk
        last = chunk[-1].pk


def _with_customers(chunk: list[Order]) -> list[Order]:
    customers = User.objects.in_bulk({order.customer_id for order in chunk})
    for order in chunk:
        order.customer = customers[order.customer_id]
    return chunk


class _Digesting:
    """A file wrapper that takes the SHA-256 of what is written through it."""

    def __init__(self, file):
        self.file, self.sha256, self.size = file, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.file.write(data)

    def flush(self) -> None:
        self.file.flush()


def orders_export(
    *,
    since: datetime | None = None,
    progress: Callable[[int], object] | None = None,
    chunk: int = EXPORT_CHUNK,
) -> Export:
    """Export every order (changed since `since`, if given) to the backup
    storage, with its manifest; returns the record of the export."""
    now = timezone.now()
    name = f"exports/orders-{now:%Y%m%dT%H%M%SZ}.jsonl.gz"
    orders = Order.objects.all()
    if since is not None:
        orders = orders.filter(updated_at__gte=since)
    count = 0
    storage = backup_storage()
    with tempfile.TemporaryFile(prefix="orders-export-") as tmp:
        digesting = _Digesting(tmp)
        # Level 6, gzip's own default: level 9 took a sixth of the export's
        # time for a file a few per cent smaller.
        with gzip.GzipFile(fileobj=digesting, mode="wb", mtime=0, compresslevel=6) as compressed:
            for orders_chunk in _chunks(orders, chunk):
                product_ids = {line.product_id for o in orders_chunk for line in o.lines.all()}
                products = read_with_fallback(
                    lambda product_ids=product_ids: Product.objects.in_bulk(product_ids)
                )
                for order in orders_chunk:
                    line = json.dumps(export_document(order, products), sort_keys=True)
                    compressed.write(line.encode() + b"\n")
                count += len(orders_chunk)
                if progress:
                    progress(len(orders_chunk))
        tmp.seek(0)
        storage.save(name, File(tmp, name=Path(name).name))
    manifest = {
        "format": FORMAT,
        "file": name,
        "count": count,
        "sha256": digesting.sha256.hexdigest(),
        "created_at": now.isoformat(),
        "since": since.isoformat() if since else None,
    }
    storage.save(manifest_name(name), ContentFile(json.dumps(manifest, indent=2).encode()))
    return Export.objects.create(
        name=name,
        manifest_name=manifest_name(name),
        count=count,
        size=digesting.size,
        sha256=manifest["sha256"],
        since=since,
        created_at=now,
    )


# --- Restore --------------------------------------------------------------------


@dataclass
class RestoreReport:
    source: str
    orders: int = 0
    skipped: int = 0  # already present (--merge)
    lines: int = 0
    events: int = 0
    customers: int = 0
    products: int = 0
    corrected: int = 0  # products whose on-hand stock a correction set
    reserved_orders: int = 0  # open orders whose units were reserved again
    unknown_actors: int = 0
    notes: list[str] = field(default_factory=list)


def _fetch(source: str, workdir: Path) -> tuple[Path, dict]:
    """The export as a local file and its manifest: `source` is a path on
    this machine or a key in the backup storage (e.g. exports/orders-….jsonl.gz)."""
    local = Path(source)
    if local.is_file():
        manifest_path = Path(manifest_name(str(local)))
        if not manifest_path.is_file():
            raise RestoreRefused(f"No manifest beside {local} ({manifest_path.name}).")
        return local, json.loads(manifest_path.read_text())
    storage = backup_storage()
    if not storage.exists(source):
        raise RestoreRefused(f"{source} is neither a file here nor in the backup storage.")
    if not storage.exists(manifest_name(source)):
        raise RestoreRefused(f"The backup storage has no manifest for {source}.")
    with storage.open(manifest_name(source), "rb") as manifest_file:
        manifest = json.loads(manifest_file.read())
    target = workdir / Path(source).name
    with storage.open(source, "rb") as remote, target.open("wb") as copy:
        shutil.copyfileobj(remote, copy, 1024 * 1024)
    return target, manifest


def _verify(path: Path, manifest: dict) -> None:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while block := file.read(1024 * 1024):
            digest.update(block)
    if digest.hexdigest() != manifest.get("sha256"):
        raise RestoreRefused(
            f"{path.name} does not match its manifest (SHA-256 {digest.hexdigest()[:16]}… "
            f"instead of {str(manifest.get('sha256'))[:16]}…): the file is damaged or not the "
            "one the manifest describes. Nothing was restored."
        )
    if manifest.get("format") != FORMAT:
        raise RestoreRefused(f"Export format {manifest.get('format')} is not {FORMAT}.")


def _documents(path: Path, size: int) -> Iterator[list[dict]]:
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        batch = []
        for line in lines:
            batch.append(json.loads(line))
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch


def _dt(value: str | None):
    return parse_datetime(value) if value else None


class _Restorer:
    """One restore: maps the export's customers and products to rows here,
    chunk by chunk, and remembers what the stock needs at the end."""

    def __init__(self, report: RestoreReport):
        self.report = report
        self.product_ids: dict[int, int] = {}  # exported id -> id here
        self.product_on_hand: dict[int, int] = {}  # id here -> exported on hand
        self.created_products: set[int] = set()
        self.held: Counter = Counter()  # id here -> units held by restored open orders
        self.note = f"Restored from {report.source}"

    def customers(self, docs: list[dict]) -> dict[int, int]:
        """Exported customer id -> user id here: matched by e-mail (or, for a
        customer who signed up by phone, by phone), else made."""
        wanted = {doc["customer"]["id"]: doc["customer"] for doc in docs}
        emails = {c["email"] for c in wanted.values() if c["email"]}
        phones = {c["phone"] for c in wanted.values() if not c["email"] and c.get("phone")}
        by_email = dict(User.objects.filter(email__in=emails).values_list("email", "pk"))
        by_phone = {
            str(phone): pk
            for phone, pk in User.objects.filter(phone__in=phones).values_list("phone", "pk")
        }
        found: dict[int, int] = {}
        missing: dict[int, User] = {}
        for exported_id, customer in wanted.items():
            known = (
                by_email.get(customer["email"])
                if customer["email"]
                else by_phone.get(customer.get("phone") or "")
            )
            if known:
                found[exported_id] = known
                continue
            missing[exported_id] = User(
                email=customer["email"] or None,
                phone=customer.get("phone") or None,
                first_name=customer["first_name"],
                last_name=customer["last_name"],
                date_joined=_dt(customer.get("date_joined")) or timezone.now(),
                # Unusable ("!" + anything): a password login needs a reset.
                password=make_password(None),
            )
        User.objects.bulk_create(missing.values())
        for exported_id, user in missing.items():
            found[exported_id] = user.pk
        self.report.customers += len(missing)
        return found

    def products(self, docs: list[dict]) -> None:
        """Products matched by SKU, else made (with their exported id when free)."""
        snapshots = {}
        for doc in docs:
            for product in doc["products"]:
                if product["id"] not in self.product_ids:
                    snapshots[product["sku"]] = product
        if not snapshots:
            return
        found = dict(Product.objects.filter(sku__in=snapshots).values_list("sku", "pk"))
        taken = set(
            Product.objects.filter(pk__in=[p["id"] for p in snapshots.values()]).values_list(
                "pk", flat=True
            )
        )
        missing = []
        for sku, snapshot in snapshots.items():
            if sku in found:
                self.product_ids[snapshot["id"]] = found[sku]
                continue
            product = Product(
                sku=sku,
                name=snapshot["name"],
                description=snapshot["description"],
                price=Decimal(snapshot["price"]),
                is_active=snapshot["is_active"],
                low_stock_threshold=snapshot["low_stock_threshold"],
            )
            if snapshot["id"] not in taken:
                product.pk = snapshot["id"]
            missing.append((snapshot, product))
        Product.objects.bulk_create([product for _, product in missing])
        for snapshot, product in missing:
            self.product_ids[snapshot["id"]] = product.pk
            self.product_on_hand[product.pk] = snapshot["stock_on_hand"]
            self.created_products.add(product.pk)
        self.report.products += len(missing)

    def chunk(self, docs: list[dict]) -> None:
        present = set(
            Order.objects.filter(pk__in=[d["order"]["id"] for d in docs]).values_list(
                "pk", flat=True
            )
        )
        self.report.skipped += len(present)
        docs = [doc for doc in docs if doc["order"]["id"] not in present]
        if not docs:
            return
        customer_ids = self.customers(docs)
        self.products(docs)
        actors = dict(
            User.objects.filter(
                email__in={e["actor"] for d in docs for e in d["events"] if e["actor"] != "system"}
            ).values_list("email", "pk")
        )
        orders, lines, events, reserves = [], [], [], []
        for doc in docs:
            data = doc["order"]
            order = Order(
                pk=data["id"],
                customer_id=customer_ids[doc["customer"]["id"]],
                status=data["status"],
                total=Decimal(data["total"]),
                currency=data["currency"],
                shipping_address=data["shipping_address"],
                notes=data["notes"],
                event_sequence=doc["sequence"],
            )
            # Kept by the insert (core.fields.StampField), not replaced by "now".
            order.created_at, order.updated_at = _dt(data["created_at"]), _dt(data["updated_at"])
            orders.append(order)
            for item in data["items"]:
                product_id = self.product_ids[item["product_id"]]
                lines.append(
                    OrderLine(
                        order_id=order.pk,
                        product_id=product_id,
                        sku=item["sku"],
                        name=item["name"],
                        unit_price=Decimal(item["unit_price"]),
                        quantity=item["quantity"],
                        line_total=Decimal(item["line_total"]),
                    )
                )
                if data["status"] in HOLDING_STOCK:
                    self.held[product_id] += item["quantity"]
                    reserves.append(
                        StockMovement(
                            product_id=product_id,
                            kind=Kind.RESERVE,
                            quantity=item["quantity"],
                            order_id=order.pk,
                            note=self.note,
                        )
                    )
            for event in doc["events"]:
                actor = None if event["actor"] == "system" else actors.get(event["actor"])
                if event["actor"] != "system" and actor is None:
                    self.report.unknown_actors += 1
                history_entry = OrderEvent(
                    order_id=order.pk,
                    type=event["type"],
                    from_status=event["from_status"] or "",
                    to_status=event["to_status"] or "",
                    actor_id=actor,
                    note=event["note"],
                    data=event["data"],
                )
                history_entry.created_at = _dt(event["created_at"])
                events.append(history_entry)
            if data["status"] in HOLDING_STOCK:
                self.report.reserved_orders += 1
        Order.objects.bulk_create(orders)
        OrderLine.objects.bulk_create(lines)
        OrderEvent.objects.bulk_create(events)
        # The restored open orders' reservations, chunk by chunk (the products'
        # figures follow at the end, in `stock`).
        StockMovement.objects.bulk_create(reserves)
        self.report.orders += len(orders)
        self.report.lines += len(lines)
        self.report.events += len(events)

    def stock(self) -> None:
        """One correction per product to the exported on-hand figure (never
        below what is now held), and the units the restored open orders hold
        (their reserve movements were written with their chunk), so the
        ledger explains every product's figures."""
        touched = set(self.created_products) | set(self.held)
        if not touched:
            return
        movements = []
        products = Product.objects.select_for_update().in_bulk(sorted(touched))
        for product_id in sorted(touched):
            product = products[product_id]
            exported = self.product_on_hand.get(product_id, product.stock_on_hand)
            target = max(exported, product.stock_reserved + self.held[product_id])
            add = target - product.stock_on_hand
            if add:
                movements.append(
                    StockMovement(
                        product_id=product_id, kind=Kind.CORRECTION, quantity=add, note=self.note
                    )
                )
                self.report.corrected += 1
            Product.objects.filter(pk=product_id).update(
                stock_on_hand=F("stock_on_hand") + add,
                stock_reserved=F("stock_reserved") + self.held[product_id],
            )
        StockMovement.objects.bulk_create(movements)
        products_changed(touched)


def orders_restore(
    *, source: str, merge: bool = False, progress: Callable[[int], object] | None = None
) -> RestoreReport:
    """Restore an export (a local path or a key in the backup storage)."""
    report = RestoreReport(source=source)
    with tempfile.TemporaryDirectory(prefix="orders-restore-") as workdir:
        path, manifest = _fetch(source, Path(workdir))
        _verify(path, manifest)
        if not merge and (Order.objects.exists() or Product.objects.exists()):
            raise RestoreRefused(
                "This database already has orders or products. Restore into an empty "
                "database, or add --merge to add the orders that are missing (orders already "
                "here are skipped)."
            )
        restorer = _Restorer(report)
        with transaction.atomic():
            read = 0
            for docs in _documents(path, RESTORE_CHUNK):
                restorer.chunk(docs)
                read += len(docs)
                if progress:
                    progress(len(docs))
            if read != manifest["count"]:
                raise RestoreRefused(
                    f"The file holds {read} orders, its manifest says {manifest['count']}: "
                    "nothing was restored."
                )
            restorer.stock()
            _reset_sequences()
    report.notes.append(
        "Stock: on-hand set by one correction per product to the exported figure, "
        f"reservations made again for {report.reserved_orders} open orders; the stock "
        "movements before the export are not restored."
    )
    if report.unknown_actors:
        report.notes.append(
            f"{report.unknown_actors} history entries were made by users this database does "
            "not have: they show no actor."
        )
    if report.customers:
        report.notes.append(
            f"{report.customers} customers were created without a usable password: they log "
            "in with a one-time code or after a password reset."
        )
    return report


def _reset_sequences() -> None:
    """After rows were inserted with their exported ids, new rows must get
    ids above them (PostgreSQL's sequences do not follow explicit ids)."""
    statements = connection.ops.sequence_reset_sql(
        no_style(), [User, Product, Order, OrderLine, OrderEvent, StockMovement]
    )
    if statements:
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
