"""Management commands that only belong on a developer's machine."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

OVERRIDE = "--i-know-this-is-not-production"


class DevelopmentCommand(BaseCommand):
    """A command that writes demo data or demo credentials (a known password):
    refused unless DEBUG is on, or it is told `--i-know-this-is-not-production`
    (a benchmark or a staging database). Run against production by mistake,
    it could re-activate a deactivated admin with a public password."""

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.add_argument(
            OVERRIDE,
            action="store_true",
            dest="not_production",
            help="Run even though DEBUG is off (never against a production database).",
        )
        return parser

    def execute(self, *args, **options):
        if not settings.DEBUG and not options.get("not_production"):
            raise CommandError(
                f"{self.__module__.rsplit('.', 1)[-1]} writes demo data and is for development: "
                f"DEBUG is off. Add {OVERRIDE} if this really is not a production database."
            )
        return super().execute(*args, **options)
