import factory
from django.contrib.auth.models import Permission

from accounts.models import User

PASSWORD = "Correct-Horse-7-Battery"

# The apps whose permissions a back-office manager holds.
BACK_OFFICE_APPS = ("accounts", "inventory", "orders")


def permissions(*names: str) -> list[Permission]:
    """Permission objects from "app_label.codename" names."""
    found = []
    for name in names:
        app_label, codename = name.split(".")
        found.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    return found


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class StaffFactory(UserFactory):
    """A staff member. By default a back-office manager holding every
    permission of the project's apps; `StaffFactory(perms=["orders.view_order"])`
    makes a narrower role, and `perms=[]` staff status alone."""

    is_staff = True

    @factory.post_generation
    def perms(obj, create, extracted, **kwargs):
        if not create:
            return
        if extracted is None:
            granted = Permission.objects.filter(content_type__app_label__in=BACK_OFFICE_APPS)
        else:
            granted = permissions(*extracted)
        obj.user_permissions.set(granted)
