"""Who made a change that a history records (order events, stock movements).

A record's `actor` is the user who acted, or null when the system did (the
background worker). Everywhere it is shown — the API, the admin, exports — it
reads as the user's e-mail (their phone for a customer who signed in by SMS
and has no e-mail) or as `SYSTEM`.
"""

SYSTEM = "system"


def actor_label(record) -> str:
    """The e-mail of `record.actor` (else their phone), or "system" when no user acted."""
    if not record.actor_id:
        return SYSTEM
    return record.actor.email or str(record.actor.phone or f"user #{record.actor_id}")
