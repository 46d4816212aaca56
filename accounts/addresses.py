"""E-mail addresses as account identifiers: one canonical form, and no
look-alikes.

`shopper@example.com` spelled with a Cyrillic "a" (U+0430) and its punycode
form `shopper@xn--exmple-4nf.com` are the same mailbox to a mail server but
would be two strings, so two accounts. Every address is therefore kept in one
form — the local part lower-cased, the domain in its ASCII (IDNA, UTS #46)
form — and a domain label that mixes alphabets (Latin with Cyrillic or
Greek letters that look alike) is refused where accounts are made.
"""

import unicodedata

import idna
from django.conf import settings
from django.core.exceptions import ValidationError

# Scripts that legitimately share a label (Japanese, Korean) count as one.
_SAME_SCRIPT = {"HIRAGANA": "CJK", "KATAKANA": "CJK", "HANGUL": "CJK"}


def normalize_email(email: str | None) -> str:
    """The canonical form of an address; never raises (a malformed address
    keeps its lower-cased form and fails validation elsewhere)."""
    email = (email or "").strip()
    local, at, domain = email.rpartition("@")
    if not at:
        return email.lower()
    try:
        domain = idna.encode(domain.rstrip("."), uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        domain = domain.lower()
    return f"{local.lower()}@{domain}"


def _scripts(label: str) -> set[str]:
    scripts = set()
    for char in label:
        if char.isalpha():
            script = unicodedata.name(char, "UNKNOWN").split()[0]
            scripts.add(_SAME_SCRIPT.get(script, script))
    return scripts


def validate_email_address(email: str) -> None:
    """Refuse an address that could pass for another: a domain label mixing
    alphabets, or a non-ASCII local part (unless EMAIL_ALLOW_UNICODE_LOCAL_PART)."""
    local, at, domain = normalize_email(email).rpartition("@")
    if not at:
        raise ValidationError("Enter a valid e-mail address.", code="invalid")
    if not local.isascii() and not settings.EMAIL_ALLOW_UNICODE_LOCAL_PART:
        raise ValidationError(
            "Use an address whose part before the @ is plain ASCII.", code="invalid"
        )
    try:
        labels = idna.decode(domain).split(".")
    except (idna.IDNAError, UnicodeError):
        raise ValidationError("Enter a valid e-mail address.", code="invalid") from None
    for label in labels:
        if len(_scripts(label)) > 1:
            raise ValidationError(
                "This domain mixes alphabets (letters that look alike); check the address.",
                code="invalid",
            )
