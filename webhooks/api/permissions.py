"""Who may use the webhooks API: staff only, reads included.

`core.permissions.StaffModelPermissions` lets reads through for anyone,
because the catalogue is public; a subscription is not (its URL says where
the shop's data goes), so here reading needs the model's view permission
too, as in the admin.
"""

from rest_framework import permissions

from core.permissions import staff_has_perm


class StaffOnlyModelPermissions(permissions.DjangoModelPermissions):
    """Active staff holding the model's permission for the method: `view_*`
    to read, `add/change/delete_*` to write. Anonymous callers get 401
    (DRF, since they did not authenticate), everyone else without it 403."""

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
    }

    def has_permission(self, request, view):
        if getattr(view, "_ignore_model_permissions", False):
            return True
        queryset = self._queryset(view)
        perms = self.get_required_permissions(request.method, queryset.model)
        return staff_has_perm(request.user, *perms)
