from accounts.models import User
from core.commands import DevelopmentCommand


class Command(DevelopmentCommand):
    help = "Create the demo admin for `make run`, or reset its password (safe to run twice)."

    def add_arguments(self, parser):
        parser.add_argument("--email", required=True)
        parser.add_argument("--password", required=True)

    def handle(self, *args, email, password, **options):
        user, created = User.objects.get_or_create(
            email=User.objects.normalize_email(email),
            defaults={"is_staff": True, "is_superuser": True},
        )
        user.is_staff = user.is_superuser = user.is_active = True
        user.set_password(password)
        user.save()
        self.stdout.write(f"Demo admin {'created' if created else 'ready'}: {user.email}")
