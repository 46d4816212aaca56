from rest_framework import serializers

from ..models import User


class RegisterSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(
        max_length=128, write_only=True, trim_whitespace=False, style={"input_type": "password"}
    )
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "email", "first_name", "last_name", "is_staff"]
        read_only_fields = fields


class LoginSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(
        max_length=128, write_only=True, trim_whitespace=False, style={"input_type": "password"}
    )


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField(read_only=True)
    refresh = serializers.CharField(read_only=True)


class RefreshSerializer(serializers.Serializer):
    refresh = serializers.CharField(max_length=2000, write_only=True)


class OtpStartSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)


class OtpStartResponseSerializer(serializers.Serializer):
    detail = serializers.CharField()
    expires_in = serializers.IntegerField(help_text="Seconds the code stays valid.")
    dev_code = serializers.CharField(
        required=False, help_text="The code itself; only when the server runs with DEBUG."
    )


class OtpVerifySerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    # [0-9], not \d: \d also matches other scripts' digits, which can never be the code.
    code = serializers.RegexField(
        r"^[0-9]{6}$", max_length=6, error_messages={"invalid": "Enter the 6-digit code."}
    )
