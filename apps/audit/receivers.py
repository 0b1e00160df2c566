"""Role changes, wherever they are made (the accounts service, Django's admin, a shell): a role is
membership of a role group, so the log listens to User.groups, from either side of it."""

from django.contrib.auth.models import Group, User
from django.db.models.signals import m2m_changed
from django.dispatch import receiver

from apps.audit.models import AuditAction
from apps.audit.services import audit_record
from apps.core.permissions import Role


def _record(user: User, roles: list[str], added: bool) -> None:
    if not roles:
        return
    audit_record(
        action=AuditAction.ROLE_CHANGED, actor=None, target=f"user {user.get_username()}",
        summary=f"{', '.join(sorted(roles))} role {'given to' if added else 'taken from'} {user.get_username()}",
        detail={"user_id": user.pk, "change": "added" if added else "removed", "roles": sorted(roles)},
    )  # fmt: skip


@receiver(m2m_changed, sender=User.groups.through)
def role_changed(sender, instance, action: str, reverse: bool, pk_set, **kwargs) -> None:
    if reverse:  # group.user_set.add(...) and the like: instance is the group, pk_set the users
        if instance.name not in Role.values:
            return
        if action in ("pre_remove", "pre_clear"):  # the users that really hold it, before they lose it
            holders = instance.user_set.filter(pk__in=pk_set) if pk_set else instance.user_set.all()
            instance._audit_users_losing = list(holders)
        elif action == "post_add" and pk_set:
            for user in User.objects.filter(pk__in=pk_set):
                _record(user, [instance.name], added=True)
        elif action in ("post_remove", "post_clear"):
            for user in getattr(instance, "_audit_users_losing", []):
                _record(user, [instance.name], added=False)
        return
    if action in ("pre_remove", "pre_clear"):
        # Django names every group asked for, held or not: keep the roles the user really loses.
        held = instance.groups.filter(name__in=Role.values)
        if pk_set:
            held = held.filter(pk__in=pk_set)
        instance._audit_roles_losing = list(held.values_list("name", flat=True))
    elif action == "post_add" and pk_set:  # (only the groups the user did not have yet)
        _record(
            instance,
            list(Group.objects.filter(pk__in=pk_set, name__in=Role.values).values_list("name", flat=True)),
            True,
        )
    elif action in ("post_remove", "post_clear"):
        _record(instance, getattr(instance, "_audit_roles_losing", []), added=False)
