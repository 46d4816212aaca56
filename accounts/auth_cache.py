"""Who a token's user is, without a database read on every API request.

A Bearer request that only reads (GET, HEAD, OPTIONS), or writes through a
view that never saves its user (the orders API: `accounts.authentication`),
takes its user from a Redis entry per user (core.cache.VersionedCache): the session stamp its
tokens must carry, the flags the API checks (active, staff, superuser), the
e-mail shown in orders, and a staff member's permissions. Any change to one
of those invalidates the entry when it happens and again when its
transaction commits, so the next request reads the database:

- any save of the user (password, deactivation, staff flag, e-mail ...);
- `accounts.services.user_end_sessions` ("log out everywhere", which bumps
  the session epoch with an UPDATE, not a save);
- the user's groups or permissions changing, a group's permissions changing
  (every member), a group or the user being deleted.

So a password change, a deactivation or "log out everywhere" refuses the
user's tokens at once, as the database path does, and a permission taken
away is gone from the next request. Entries expire after a minute whatever
happens, which bounds what an invalidation lost to a Redis failure could
leave. Other writes keep reading the user row: they may save it, and a
user built from the entry has only the fields above loaded.
"""

import json

from django.conf import settings
from django.contrib.auth.models import Group
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete
from django.utils.crypto import salted_hmac

from core.cache import VersionedCache

from .models import User
from .tokens import session_stamp

TTL = 60
FIELDS = ("email", "is_active", "is_staff", "is_superuser")


_namespaces: dict[str, str] = {}


def _namespace() -> str:
    """Entries are named after the SECRET_KEY they were made with (a digest of
    it): the stamps they hold are HMACs by that key, so after a rotation (or
    beside another deployment on the same Redis) no entry is read that the
    new key did not make."""
    secret = settings.SECRET_KEY
    name = _namespaces.get(secret)
    if name is None:
        digest = salted_hmac("accounts.auth_cache", "namespace").hexdigest()[:12]
        name = _namespaces[secret] = f"accounts:user:{digest}"
    return name


user_states = VersionedCache(_namespace, ttl=TTL)


class _Missing(Exception):
    pass


def _build(user_id) -> bytes:
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        raise _Missing
    staff_perms = user.is_active and user.is_staff and not user.is_superuser
    state = {name: getattr(user, name) for name in FIELDS}
    state["stamp"] = session_stamp(user)
    state["perms"] = sorted(user.get_all_permissions()) if staff_perms else []
    return json.dumps(state).encode()


def cached_user(user_id) -> tuple[User, str] | None:
    """The user (with only the cached fields loaded: any other is read from
    the database if asked for) and the session stamp their tokens must
    carry; None if there is no such user."""
    try:
        pk = int(user_id)
        state = json.loads(user_states.get_or_build(pk, lambda: _build(pk)))
    except (_Missing, TypeError, ValueError):
        return None
    loaded = {"id": pk, **{name: state[name] for name in FIELDS}}
    names = [f.attname for f in User._meta.concrete_fields if f.attname in loaded]
    user = User.from_db("default", names, [loaded[name] for name in names])
    # What ModelBackend.has_perm reads (a superuser holds every permission anyway).
    user._perm_cache = set(state["perms"])
    return user, state["stamp"]


def users_changed(user_ids) -> None:
    """Invalidate these users' entries now and when the transaction commits."""
    user_states.invalidate_on_commit(list(user_ids))


def _user_saved(sender, instance, **kwargs):
    users_changed([instance.pk])


def _memberships_changed(sender, instance, action, reverse, pk_set, **kwargs):
    """A user's groups or permissions, changed from either side."""
    if isinstance(instance, User):
        if action.startswith("post_"):
            users_changed([instance.pk])
    elif action in ("post_add", "post_remove"):
        users_changed(pk_set or ())  # users added to or removed from a group or permission
    elif action == "pre_clear":
        users_changed(instance.user_set.values_list("pk", flat=True))


def _group_permissions_changed(sender, instance, action, reverse, pk_set, **kwargs):
    if not action.startswith("post_"):
        return
    if isinstance(instance, Group):
        groups = [instance]
    else:  # permissions given to or taken from groups, from the permission's side
        groups = Group.objects.filter(pk__in=pk_set or ())
    for group in groups:
        users_changed(group.user_set.values_list("pk", flat=True))


def _group_deleted(sender, instance, **kwargs):
    users_changed(instance.user_set.values_list("pk", flat=True))


def connect() -> None:
    uid = "accounts.auth_cache."
    post_save.connect(_user_saved, sender=User, dispatch_uid=uid + "saved")
    post_delete.connect(_user_saved, sender=User, dispatch_uid=uid + "deleted")
    for through in (User.groups.through, User.user_permissions.through):
        m2m_changed.connect(_memberships_changed, sender=through, dispatch_uid=uid + str(through))
    m2m_changed.connect(
        _group_permissions_changed,
        sender=Group.permissions.through,
        dispatch_uid=uid + "group_permissions",
    )
    pre_delete.connect(_group_deleted, sender=Group, dispatch_uid=uid + "group_deleted")
