from django.contrib.auth.models import Group, User
from django.db import transaction

from apps.core.errors import ApplicationError
from apps.core.permissions import Role


@transaction.atomic
def user_create(*, username: str, password: str, role: Role, email: str = "") -> User:
    if User.objects.filter(username__iexact=username).exists():
        raise ApplicationError(f"A user named {username!r} already exists.", field="username")
    user = User.objects.create_user(username=username, password=password, email=email)
    user_set_role(user=user, role=role)
    return user


@transaction.atomic
def user_set_role(*, user: User, role: Role) -> User:
    """Give the user exactly one role group (only what changes is changed, so the audit log
    records real changes: setting the role a user has is no change)."""
    user.groups.remove(*user.groups.filter(name__in=Role.values).exclude(name=role.value))
    if not user.groups.filter(name=role.value).exists():
        user.groups.add(Group.objects.get(name=role.value))
    return user
