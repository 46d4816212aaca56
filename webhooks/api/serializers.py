from rest_framework import serializers

from ..models import Delivery, Subscription

# A subscription asks for a few of the event types: a bound on the list keeps
# an absurd body from becoming an absurd error message.
MAX_EVENT_TYPES = 20


class SubscriptionSerializer(serializers.ModelSerializer):
    """A subscription as the API shows it: never its secret."""

    events = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text='Event types, or ["*"] for all of them.',
    )

    class Meta:
        model = Subscription
        fields = (
            "id",
            "url",
            "events",
            "description",
            "is_active",
            "disabled_reason",
            "failing_since",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


class SubscriptionCreatedSerializer(SubscriptionSerializer):
    """The answer to a create: the subscription and, this once, its secret."""

    secret = serializers.CharField(
        read_only=True,
        help_text="The signing secret (`whsec_…`): shown this once, store it now.",
    )

    class Meta(SubscriptionSerializer.Meta):
        fields = (*SubscriptionSerializer.Meta.fields, "secret")
        read_only_fields = fields


class SubscriptionWriteSerializer(serializers.ModelSerializer):
    """What staff set on a subscription. The URL and the event types are
    checked again by the services (a public https address, known types)."""

    url = serializers.URLField(max_length=2000)
    events = serializers.ListField(
        child=serializers.CharField(max_length=40),
        allow_empty=False,
        max_length=MAX_EVENT_TYPES,
        help_text='Event types, or ["*"] for all of them.',
    )

    class Meta:
        model = Subscription
        fields = ("url", "events", "description", "is_active")


class SecretSerializer(serializers.Serializer):
    secret = serializers.CharField(
        read_only=True,
        help_text="The new signing secret (`whsec_…`): shown this once. The previous one "
        "keeps signing for 24 hours.",
    )


class PingSerializer(serializers.Serializer):
    event_id = serializers.CharField(
        read_only=True, help_text="The queued event's id (`evt_…`), its `webhook-id` header."
    )


class DeliverySerializer(serializers.ModelSerializer):
    """One event sent (or to be sent) to one subscription."""

    event_id = serializers.CharField(
        source="event.webhook_id",
        read_only=True,
        help_text="The event's id (`evt_…`), sent as the `webhook-id` header.",
    )
    event_type = serializers.CharField(source="event.type", read_only=True)

    class Meta:
        model = Delivery
        fields = (
            "id",
            "event_id",
            "event_type",
            "status",
            "attempts",
            "last_status_code",
            "last_error",
            "next_attempt_at",
            "created_at",
            "delivered_at",
        )
        read_only_fields = fields
