"""Who may do what, the same in the API as in the admin (SPEC §3).

Staff act with Django's model permissions: `view_*` to read what only staff
see, `add/change/delete_*` to write, and the custom permissions the models
declare (`inventory.adjust_stock`, `orders.move_order`, ...). Like the admin,
the API asks for staff status AND the permission: `is_staff` alone grants
nothing, and a permission given to a non-staff account grants nothing either.
Superusers hold every permission.

Services check the permissions of the rules they own (a move, a stock
adjustment) with `staff_has_perm`; views use the DRF classes below for the
plain model permissions. A missing permission is a 403 `permission_denied`.
"""

from rest_framework import permissions

from .exceptions import PermissionRefused


def staff_has_perm(user, *perms: str) -> bool:
    """Whether `user` is active staff holding every one of `perms`."""
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and user.is_staff
        and user.has_perms(perms)
    )


def staff_has_any_perm(user, *perms: str) -> bool:
    """Whether `user` is active staff holding at least one of `perms`."""
    return any(staff_has_perm(user, perm) for perm in perms)


def require_staff_perm(user, perm: str, detail: str | None = None) -> None:
    """Refuse (403) unless `user` is active staff with `perm`."""
    if not staff_has_perm(user, perm):
        raise PermissionRefused(detail or f"This needs the {perm} permission.")


class StaffModelPermissions(permissions.DjangoModelPermissions):
    """Reads are open to whoever the view lets in (its queryset shows each
    caller what they may see); writes need staff status and the model's
    add/change/delete permission. Anonymous writers get 401, others 403."""

    authenticated_users_only = False

    def has_permission(self, request, view):
        if request.method in permissions.SAFE_METHODS:
            return True
        user = request.user
        if not (user and user.is_authenticated and user.is_active and user.is_staff):
            return False
        return super().has_permission(request, view)


def staff_permission(perm: str) -> type[permissions.BasePermission]:
    """A DRF permission class: active staff holding `perm` (e.g. for an
    `@action` whose rule is a custom permission)."""

    class StaffPermission(permissions.BasePermission):
        message = f"You do not have permission to perform this action ({perm})."

        def has_permission(self, request, view):
            return staff_has_perm(request.user, perm)

    StaffPermission.__name__ = StaffPermission.__qualname__ = f"Staff[{perm}]"
    return StaffPermission
