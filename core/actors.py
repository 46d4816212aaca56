"""Who made a change that a history records (order events, stock movements).

A record's `actor` is the user who acted, or null when the system did (the
background worker). Everywhere it is shown — the API, the admin, exports — it
reads as the user's e-mail or as `SYSTEM`.
"""

SYSTEM = "system"


def actor_label(record) -> str:
    """The e-mail of `record.actor`, or "system" when no user acted."""
    return record.actor.email if record.actor_id else SYSTEM
