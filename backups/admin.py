"""The backups in the back office: the last exports with a download link,
and the state of the order copies."""

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html

from .models import Export, OrderCopy
from .storage import backup_storage

# Downloading an export is exporting orders: the same permission as the CSV.
EXPORT_PERMISSION = "orders.export_order"


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Export)
class ExportAdmin(ReadOnlyAdmin):
    list_display = ("name", "created_at", "count", "size_mb", "since", "download")
    ordering = ("-created_at", "-id")
    fields = ("name", "manifest_name", "created_at", "count", "size", "sha256", "since")

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm(EXPORT_PERMISSION)

    def has_module_permission(self, request):
        return request.user.has_perm(EXPORT_PERMISSION)

    @admin.display(description="size")
    def size_mb(self, export):
        return f"{export.size / 2**20:,.1f} MB"

    @admin.display(description="file")
    def download(self, export):
        url = reverse("admin:backups_export_download", args=[export.pk])
        return format_html('<a href="{}">Download</a>', url)

    def get_urls(self):
        return [
            path(
                "<int:pk>/download/",
                self.admin_site.admin_view(self.download_view),
                name="backups_export_download",
            ),
            *super().get_urls(),
        ]

    def download_view(self, request, pk):
        """A presigned, short-lived URL on S3; the file itself from a folder."""
        if not request.user.has_perm(EXPORT_PERMISSION):
            raise PermissionDenied
        export = get_object_or_404(Export, pk=pk)
        storage = backup_storage()
        try:
            return HttpResponseRedirect(storage.url(export.name))
        except (NotImplementedError, ValueError):  # a folder without a URL: stream it
            return FileResponse(
                storage.open(export.name, "rb"),
                as_attachment=True,
                filename=export.name.rsplit("/", 1)[-1],
            )


@admin.register(OrderCopy)
class OrderCopyAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "due_sequence", "copied_sequence", "copied_at", "due", "last_error")
    list_filter = (("last_error", admin.EmptyFieldListFilter),)
    search_fields = ("order_id",)
    ordering = ("-order_id",)
    show_full_result_count = False

    @admin.display(boolean=True, description="due")
    def due(self, copy):
        return copy.is_due
