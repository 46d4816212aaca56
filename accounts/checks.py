"""System checks of the accounts app: a mistyped SMS setting stops
`manage.py check` (and every command) instead of failing each send later."""

import phonenumbers
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from .sms_backends import backend_class


@checks.register()
def sms_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    errors = []
    try:
        backend_class(settings.SMS_BACKEND)
    except ImproperlyConfigured as error:
        errors.append(checks.Error(str(error), id="accounts.E001"))
    regions = phonenumbers.SUPPORTED_REGIONS
    unknown = [
        country
        for country in settings.SMS_ALLOWED_COUNTRIES
        if country.strip() and country.strip().upper() not in regions
    ]
    if unknown:
        errors.append(
            checks.Error(
                f"SMS_ALLOWED_COUNTRIES has unknown region codes: {', '.join(unknown)}.",
                hint="Use ISO 3166-1 alpha-2 codes, comma-separated, e.g. US,CA,GB.",
                id="accounts.E002",
            )
        )
    return errors
