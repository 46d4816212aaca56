import sys
from datetime import datetime, time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from tqdm import tqdm

from backups import exports
from orders.models import Order


class Command(BaseCommand):
    help = (
        "Export every order (or those changed since --since) to the backup storage: "
        "exports/orders-<UTC date-time>.jsonl.gz and its manifest."
    )

    def add_arguments(self, parser):
        parser.add_argument("--since", help="Only orders changed since this date or date-time.")

    def handle(self, *args, since=None, **options):
        start = None
        if since:
            start = parse_datetime(since)
            if start is None and (day := parse_date(since)):
                start = datetime.combine(day, time.min)
            if start is None:
                raise CommandError(f"--since {since!r} is not a date (2026-11-30) or date-time.")
            if timezone.is_naive(start):
                start = timezone.make_aware(start)
        total = Order.objects.filter(updated_at__gte=start).count() if start else None
        # A progress bar on a terminal only (tqdm stays quiet when stderr is not one).
        with tqdm(total=total, unit="order", file=sys.stderr, disable=None) as bar:
            export = exports.orders_export(since=start, progress=bar.update)
        self.stdout.write(
            f"Exported {export.count} orders to {export.name} ({export.size:,} bytes, "
            f"SHA-256 {export.sha256[:16]}…); manifest {export.manifest_name}."
        )
