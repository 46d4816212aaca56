"""Phone numbers as account identifiers and SMS recipients: one canonical
form (E.164, `+14155550123`), and only numbers a text can be sent to at an
ordinary price.

Every SMS costs money, and sign-in codes are a known target of toll fraud
(SMS pumping): an attacker asks for codes to premium-rate or shared-cost
numbers whose revenue they share. So a number must be valid (assigned to a
carrier in the numbering plan), of a type that receives texts (a mobile, or
a number whose plan does not tell mobile from fixed line, as in the US and
Canada; or VoIP), and from a country of SMS_ALLOWED_COUNTRIES when that is
set. The rules are the same wherever a phone enters: a one-time code, the
profile (`PATCH /auth/me/`), the admin.
"""

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from phonenumbers import PhoneNumberType

# E.164: "+" and at most 15 digits.
MAX_LENGTH = 16

# The number types a code may go to. Everything else is refused: premium
# rate, shared cost, personal numbers and UAN (the ranges toll fraud uses),
# toll free, pagers, voicemail, fixed lines (no SMS), and UNKNOWN (not
# assigned in the numbering plan).
SMS_NUMBER_TYPES = frozenset(
    {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE, PhoneNumberType.VOIP}
)

INVALID = "Enter a valid phone number in international form, e.g. +14155550123."
NOT_ALLOWED = "Login codes cannot be sent to this kind of number; use a mobile number."
COUNTRY_NOT_ALLOWED = "Login codes cannot be sent to numbers of this country."


def _parse(raw) -> phonenumbers.PhoneNumber:
    if not isinstance(raw, str) or not raw.strip() or len(raw) > 64:
        raise ValidationError(INVALID, code="invalid")
    try:
        # No default region: the number must carry its country code (+...).
        number = phonenumbers.parse(raw.strip(), None)
    except phonenumbers.NumberParseException:
        raise ValidationError(INVALID, code="invalid") from None
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(INVALID, code="invalid")
    return number


def normalize_phone(raw) -> str | None:
    """The E.164 form of `raw`, or None when it is not a valid number. Never
    raises: for lookups (the throttles) where a refusal comes later."""
    try:
        return _e164(_parse(raw))
    except ValidationError:
        return None


def _e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def validate_sms_phone(raw) -> str:
    """`raw` in E.164 if a login code may be texted to it, else ValidationError
    (code `invalid`: not a valid number; `phone_not_allowed`: a number of a
    type or country that gets no codes)."""
    number = _parse(raw)
    if phonenumbers.number_type(number) not in SMS_NUMBER_TYPES:
        raise ValidationError(NOT_ALLOWED, code="phone_not_allowed")
    allowed = {country.strip().upper() for country in settings.SMS_ALLOWED_COUNTRIES}
    allowed.discard("")
    if allowed and phonenumbers.region_code_for_number(number) not in allowed:
        raise ValidationError(COUNTRY_NOT_ALLOWED, code="phone_not_allowed")
    return _e164(number)
