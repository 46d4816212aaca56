import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from backups import exports


class Command(BaseCommand):
    help = (
        "Restore an export (a file here, or a key in the backup storage such as "
        "exports/orders-20261202T020000Z.jsonl.gz) after checking it against its manifest. "
        "Refuses a database with orders or products unless --merge."
    )

    def add_arguments(self, parser):
        parser.add_argument("source", metavar="FILE_OR_KEY")
        parser.add_argument(
            "--merge",
            action="store_true",
            help="Restore into a database that has orders: the orders already here are skipped.",
        )

    def handle(self, *args, source, merge, **options):
        try:
            with tqdm(unit="order", file=sys.stderr, disable=None) as bar:
                report = exports.orders_restore(source=source, merge=merge, progress=bar.update)
        except exports.RestoreRefused as refused:
            raise CommandError(str(refused)) from refused
        self.stdout.write(
            f"Restored {report.orders} orders ({report.lines} lines, {report.events} history "
            f"entries), {report.customers} customers and {report.products} products from "
            f"{source}; {report.skipped} orders were already here."
        )
        for note in report.notes:
            self.stdout.write(note)
