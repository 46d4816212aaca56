"""The back office's own admin site: the dashboard on its index page, and
staff two-factor (SPEC §11) in front of every page when ADMIN_REQUIRE_2FA is
on: the login asks for the code, a member without a device enrols first."""

from functools import update_wrapper

from django.contrib import admin
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect

from accounts import two_factor as devices

from . import dashboard, two_factor


class OrdersAdminSite(admin.AdminSite):
    site_header = "Orders back office"
    site_title = "Orders admin"
    index_title = "Today"
    login_form = two_factor.TwoFactorLoginForm
    login_template = "admin/two_factor/login.html"

    def has_permission(self, request):
        if not super().has_permission(request):
            return False
        if not two_factor.required():
            return True
        # Logging out needs no second factor: a member half-way through
        # enrolment must be able to leave.
        return request.user.is_verified() or self._is_logout(request)

    def _is_logout(self, request) -> bool:
        return request.path == reverse("admin:logout", current_app=self.name)

    def admin_view(self, view, cacheable=False):
        checked = super().admin_view(view, cacheable)

        def inner(request, *args, **kwargs):
            if two_factor.must_enrol(request) and not self._is_logout(request):
                return redirect_to_login(
                    request.get_full_path(),
                    reverse("admin:two_factor_enrol", current_app=self.name),
                )
            return checked(request, *args, **kwargs)

        return update_wrapper(inner, checked)

    def get_urls(self):
        # Not an admin_view: the member it is for has no permission yet.
        enrol = csrf_protect(never_cache(self.two_factor_enrol))
        return [
            path("two-factor/enrol/", enrol, name="two_factor_enrol"),
            *super().get_urls(),
        ]

    def login(self, request, extra_context=None):
        return super().login(
            request, {"two_factor": two_factor.required(), **(extra_context or {})}
        )

    def two_factor_enrol(self, request):
        """Shows the QR code of a new authenticator and asks for its first
        code; a right one confirms it and shows the backup codes, once."""
        if not (request.user.is_active and request.user.is_staff):
            return redirect_to_login(
                request.get_full_path(), reverse("admin:login", current_app=self.name)
            )
        next_url = two_factor.safe_next(
            request, default=reverse("admin:index", current_app=self.name)
        )
        if not two_factor.must_enrol(request):
            return HttpResponseRedirect(next_url)
        device = devices.pending_authenticator(user=request.user)
        form = two_factor.EnrolForm(
            request.POST if request.method == "POST" else None, device=device
        )
        context = {**self.each_context(request), "next": next_url}
        if form.is_valid():
            codes = two_factor.finish_enrolment(request, device=device)
            context.update(title="Your backup codes", backup_codes=codes)
            return TemplateResponse(request, "admin/two_factor/backup_codes.html", context)
        context.update(
            title="Set up two-factor authentication",
            form=form,
            qr_code=two_factor.qr_code_svg(device.config_url),
            secret=devices.base32_secret(device),
        )
        return TemplateResponse(request, "admin/two_factor/enrol.html", context)

    def index(self, request, extra_context=None):
        return super().index(
            request, {**dashboard.dashboard_context(request), **(extra_context or {})}
        )
