from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .actors import SYSTEM, actor_label


@extend_schema_field(OpenApiTypes.STR)
class ActorField(serializers.Field):
    """Who made a change recorded in a history: the user's e-mail, or
    "system" for the background worker. Reads the object's `actor`."""

    def __init__(self, **kwargs):
        kwargs.setdefault(
            "help_text",
            f'The user\'s e-mail (their phone if they have none), or "{SYSTEM}".',
        )
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, obj):
        return actor_label(obj)
