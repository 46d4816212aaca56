from rest_framework import serializers

from ..models import User


class RegisterSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(
        max_length=128, write_only=True, trim_whitespace=False, style={"input_type": "password"}
    )
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")


class PhoneField(serializers.CharField):
    """A phone number in international form (E.164, `+14155550123`; spaces
    and dashes are tolerated). The service checks it and keeps it in E.164
    (`accounts.phones`)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 32)
        kwargs.setdefault(
            "help_text", "A mobile number in international form (E.164), e.g. +14155550123."
        )
        super().__init__(**kwargs)


class UserSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "email", "phone", "first_name", "last_name", "is_staff"]
        read_only_fields = fields
        extra_kwargs = {
            "email": {"help_text": "Null for a customer who signed in by SMS only."},
            "phone": {"help_text": "In E.164, or null."},
        }


class ProfileSerializer(serializers.Serializer):
    """What a user may change of their own profile (`PATCH /auth/me/`); the
    e-mail is not edited here."""

    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    phone = PhoneField(
        required=False,
        allow_null=True,
        help_text="A mobile number in E.164 (e.g. +14155550123), unique; null removes it "
        "(not when it is the user's only way to sign in).",
    )


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


ONE_OF = "Send exactly one of `email` and `phone`."


class OtpStartSerializer(serializers.Serializer):
    """Either `{"email"}`: the code is mailed; or `{"phone"}`: the code is
    texted (SMS). Exactly one of the two: both, or neither, is a 400 naming
    the field."""

    email = serializers.EmailField(
        max_length=254, required=False, help_text=f"Mail the code here. {ONE_OF}"
    )
    phone = PhoneField(
        required=False,
        help_text="Text the code to this mobile number, in E.164 (e.g. +14155550123). "
        f"Premium-rate, shared-cost and invalid numbers are refused. {ONE_OF}",
    )


class OtpStartResponseSerializer(serializers.Serializer):
    detail = serializers.CharField()
    expires_in = serializers.IntegerField(help_text="Seconds the code stays valid.")
    dev_code = serializers.CharField(
        required=False, help_text="The code itself; only when the server runs with DEBUG."
    )


class OtpVerifySerializer(serializers.Serializer):
    """`{"email", "code"}` or `{"phone", "code"}`: the recipient the code was
    sent to, exactly one of the two."""

    email = serializers.EmailField(
        max_length=254, required=False, help_text=f"The address the code was mailed to. {ONE_OF}"
    )
    phone = PhoneField(
        required=False, help_text=f"The number the code was texted to, in E.164. {ONE_OF}"
    )
    # [0-9], not \d: \d also matches other scripts' digits, which can never be the code.
    code = serializers.RegexField(
        r"^[0-9]{6}$", max_length=6, error_messages={"invalid": "Enter the 6-digit code."}
    )
