from django.core.management.base import BaseCommand, CommandError

from accounts import two_factor
from accounts.models import User


class Command(BaseCommand):
    help = (
        "Remove a staff member's two-factor devices (authenticator and backup codes), "
        "for a lost phone: they set up an authenticator again at their next admin login."
    )

    def add_arguments(self, parser):
        parser.add_argument("email", help="The member's e-mail address (their login).")

    def handle(self, *args, email, **options):
        try:
            user = User.objects.get_by_natural_key(email)
        except User.DoesNotExist:
            raise CommandError(f"No user with the e-mail address {email!r}.") from None
        removed = two_factor.reset_devices(user=user)
        self.stdout.write(
            f"{user.email}: removed {removed['authenticators']} authenticator device(s) and "
            f"{removed['backup_code_sets']} backup-code set(s) "
            f"({removed['unused_backup_codes']} unused code(s)). "
            "They set up two-factor again at their next admin login."
        )
