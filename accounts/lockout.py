"""Brute-force lockout (SPEC §11), the project's side of django-axes.

Axes counts failed logins per (account, client address) pair, whether they
come through the admin's login form or the API's token endpoint, and locks the
pair after AXES_FAILURE_LIMIT failures for AXES_COOLOFF_TIME. The settings
point axes at the functions here: who the account is, where the client is, and
what a locked-out client is answered.
"""

import ipaddress
import math
from datetime import timedelta

from axes.helpers import get_cool_off
from axes.models import AccessAttempt
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.core.exceptions import NON_FIELD_ERRORS
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from rest_framework.throttling import BaseThrottle

from core.errors import error_response

from .models import User

LOCKED_STATUS = 429


def lockout_username(request: HttpRequest, credentials: dict | None = None) -> str | None:
    """AXES_USERNAME_CALLABLE: the account a login attempt is for, normalized
    as logins compare it, so "Ann@Example.com " and "ann@example.com" share one
    count. The admin's form calls it `username`, the API `email`."""
    credentials = credentials or {}
    raw = credentials.get("username") or credentials.get("email")
    if raw is None:
        raw = request.POST.get("username")
    if not isinstance(raw, str):
        return None
    return User.objects.normalize_email(raw) or None


def client_ip(request: HttpRequest) -> str | None:
    """AXES_CLIENT_IP_CALLABLE: the client address exactly as the API's
    throttles see it (REST_FRAMEWORK["NUM_PROXIES"]: REMOTE_ADDR alone when 0,
    else the address that many proxies put in X-Forwarded-For), so a forged
    header buys no fresh count here either."""
    address = BaseThrottle().get_ident(request)
    try:
        return str(ipaddress.ip_address(address.strip()))
    except (AttributeError, ValueError):
        # Not an address (a misconfigured NUM_PROXIES lets the client write
        # the header): axes stores addresses in an IP column, so fall back to
        # the peer, which the client cannot choose.
        return request.META.get("REMOTE_ADDR")


def seconds_until_unlocked(request: HttpRequest, credentials: dict | None = None) -> int:
    """How long the request's (account, address) pair stays locked: the
    cool-off counted from its latest failure. With several records for the
    pair (one per user agent) the lock may end sooner; never later."""
    now = timezone.now()
    cool_off = get_cool_off(request) or timedelta(0)
    latest = AccessAttempt.objects.filter(
        username=lockout_username(request, credentials), ip_address=client_ip(request)
    ).aggregate(latest=Max("attempt_time"))["latest"]
    remaining = (latest or now) + cool_off - now
    return max(1, math.ceil(remaining.total_seconds()))


def lockout_message(wait: int) -> str:
    """What a locked-out client reads, the wait rounded up to whole minutes."""
    minutes = max(1, math.ceil(wait / 60))
    unit = "minute" if minutes == 1 else "minutes"
    return (
        f"Too many failed logins for this account from your address; try again in {minutes} {unit}."
    )


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict | None = None,
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the answer to a login attempt on a locked pair
    (including the failure that locks it), 429 with Retry-After. In the admin
    it is the login page again with the reason; elsewhere the SPEC's error
    shape. The API's token endpoint has already answered so (see
    `accounts.services.user_authenticate`) and its answer is kept."""
    in_admin = _is_admin_request(request)
    answered = original_response is not None and original_response.status_code == LOCKED_STATUS
    if answered and not in_admin:
        return original_response
    wait = seconds_until_unlocked(request, credentials)
    if in_admin:
        response = _admin_login_page(request, lockout_message(wait))
    else:
        response = error_response(LOCKED_STATUS, "throttled", lockout_message(wait))
    response["Retry-After"] = str(wait)
    return response


def _is_admin_request(request: HttpRequest) -> bool:
    try:
        return request.path.startswith(reverse("admin:index"))
    except NoReverseMatch:
        return False


def _admin_login_page(request: HttpRequest, detail: str) -> HttpResponse:
    """The admin's login page with `detail` as the form's error, the account
    filled in, as the admin's own login view renders it."""
    from django.contrib import admin
    from django.contrib.admin.forms import AdminAuthenticationForm

    site = admin.site
    form_class = site.login_form or AdminAuthenticationForm
    form = form_class(request, initial={"username": request.POST.get("username", "")})
    form.errors[NON_FIELD_ERRORS] = form.error_class(
        [detail], error_class="nonfield", renderer=form.renderer
    )
    next_url = request.POST.get(REDIRECT_FIELD_NAME) or request.GET.get(REDIRECT_FIELD_NAME)
    context = {
        **site.each_context(request),
        "title": "Log in",
        "subtitle": None,
        "app_path": request.get_full_path(),
        "username": request.user.get_username(),
        "form": form,
        REDIRECT_FIELD_NAME: next_url or reverse("admin:index", current_app=site.name),
    }
    response = render(
        request, site.login_template or "admin/login.html", context, status=LOCKED_STATUS
    )
    # A page of the admin, not an API error: JsonErrorMiddleware keeps it.
    response.keep_html = True
    return response
