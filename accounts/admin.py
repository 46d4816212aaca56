from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import BaseUserCreationForm, UserChangeForm
from django.core.exceptions import PermissionDenied

from core.exceptions import PermissionRefused

from . import services
from .models import ApiKey, SmsMessage, User
from .phones import validate_sms_phone


class PhoneAndEmailRules:
    """What the admin's user forms check on top of the model: a phone passes
    the rules for a number login codes are texted to (`accounts.phones`), a
    user has an e-mail or a phone (a way to sign in), and staff have an
    e-mail (their login; staff never sign in with a code)."""

    def clean_phone(self):
        phone = self.cleaned_data.get("phone")
        if not phone:
            return None
        return validate_sms_phone(str(phone))

    def clean(self):
        cleaned = super().clean()
        email, phone = cleaned.get("email"), cleaned.get("phone")
        if "email" in self.errors or "phone" in self.errors:
            return cleaned
        is_staff = cleaned.get("is_staff", getattr(self.instance, "is_staff", False))
        is_superuser = cleaned.get("is_superuser", getattr(self.instance, "is_superuser", False))
        if not email and (is_staff or is_superuser):
            self.add_error("email", "Staff members need an e-mail address: it is their login.")
        elif not email and not phone:
            self.add_error("email", "Enter an e-mail address or a phone number.")
        return cleaned


class UserCreationForm(PhoneAndEmailRules, BaseUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "phone")


class UserEditForm(PhoneAndEmailRules, UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    form = UserEditForm
    add_form = UserCreationForm
    list_display = (
        "email",
        "phone",
        "first_name",
        "last_name",
        "is_staff",
        "is_active",
        "date_joined",
    )
    # A customer who signed in by SMS has no e-mail: the phone links too.
    list_display_links = ("email", "phone")
    list_filter = ("is_staff", "is_superuser", "is_active")
    search_fields = ("email", "phone", "first_name", "last_name")
    ordering = ("email", "phone")
    readonly_fields = ("last_login", "date_joined")
    fieldsets = (
        (None, {"fields": ("email", "phone", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name")}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "phone", "password1", "password2")}),
    )

    # Who may grant power: only superusers change staff status, superuser
    # status, groups and permissions, and only they edit a superuser (its
    # password included). A member who may change users edits the rest.
    POWER_FIELDS = ("is_staff", "is_superuser", "groups", "user_permissions")

    def get_readonly_fields(self, request, obj=None):
        fields = super().get_readonly_fields(request, obj)
        if request.user.is_superuser:
            return fields
        return (*fields, *self.POWER_FIELDS)

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if change and "is_active" in form.changed_data and not obj.is_active:
            # A deactivation ends every session at once (and revokes API keys),
            # so reactivating the account later does not bring them back.
            services.user_end_sessions(user=obj)


class ApiKeyForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ("user", "name")


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are made here and shown once; after that only their prefix is known.
    A key is never edited, only revoked."""

    form = ApiKeyForm
    list_display = ("prefix", "name", "user", "created_at", "last_used_at", "active")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    list_select_related = ("user",)
    search_fields = ("prefix", "name", "user__email")
    actions = ["revoke"]

    @admin.display(boolean=True, description="active")
    def active(self, obj):
        return obj.is_active

    # A key acts as its user: only a superuser makes (and sees) keys of other
    # users; any other member, only their own (accounts.services.api_key_create).

    def get_queryset(self, request):
        keys = super().get_queryset(request)
        return keys if request.user.is_superuser else keys.filter(user=request.user)

    def get_autocomplete_fields(self, request):
        return ("user",) if request.user.is_superuser else ()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user" and not request.user.is_superuser:
            kwargs["queryset"] = User.objects.filter(pk=request.user.pk)
            kwargs["initial"] = request.user.pk
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("user", "name")
        return (
            "user",
            "name",
            "prefix",
            "created_by",
            "created_at",
            "last_used_at",
            "revoked_at",
        )

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ()
        return self.get_fields(request, obj)

    def save_model(self, request, obj, form, change):
        if change:
            return
        try:
            api_key, raw = services.api_key_create(
                user=obj.user, name=obj.name, created_by=request.user
            )
        except PermissionRefused as refused:
            raise PermissionDenied(refused.detail) from refused
        # The admin goes on with `obj` (redirects, log entry): point it at the saved key.
        obj.pk = api_key.pk
        obj.prefix, obj.key_hash = api_key.prefix, api_key.key_hash
        obj.created_at = api_key.created_at
        messages.warning(
            request,
            f"The new API key is {raw} — copy it now: it is stored hashed and will not be "
            "shown again.",
        )

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke(self, request, queryset):
        count = 0
        for api_key in queryset.filter(revoked_at__isnull=True):
            services.api_key_revoke(api_key=api_key)
            count += 1
        self.message_user(request, f"Revoked {count} API key(s).", messages.SUCCESS)


@admin.register(SmsMessage)
class SmsMessageAdmin(admin.ModelAdmin):
    """The SMS log: what went to which number, what failed for good and why.
    A body is never shown (a queued one holds a live login code), and nothing
    is edited here: the outbox and its sweep send (`accounts.sms`)."""

    list_display = ("id", "phone", "status", "attempts", "created_at", "sent_at", "last_error")
    list_filter = ("status", "created_at")
    search_fields = ("phone", "provider_id")
    fields = (
        "phone",
        "status",
        "attempts",
        "created_at",
        "next_attempt_at",
        "expires_at",
        "sent_at",
        "provider_id",
        "last_error",
    )
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
