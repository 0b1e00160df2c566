"""Role changes, wherever they are made (the accounts service, Django's admin, a shell): a role is
membership of a role group, so the log listens to User.groups."""

from django.contrib.auth.models import Group, User
from django.db.models.signals import m2m_changed
from django.dispatch import receiver

from apps.audit.models import AuditAction
from apps.audit.services import audit_record
from apps.core.permissions import Role


@receiver(m2m_changed, sender=User.groups.through)
def role_changed(sender, instance, action: str, reverse: bool, pk_set, **kwargs) -> None:
    if reverse or not pk_set:
        return  # (a group's side of the relation is not how roles are given here)
    if action == "pre_remove":
        # Django names every group asked for, held or not: keep the roles the user really loses.
        held = instance.groups.filter(pk__in=pk_set, name__in=Role.values)
        instance._audit_roles_losing = sorted(held.values_list("name", flat=True))
        return
    if action == "post_add":  # (only the groups the user did not have yet)
        given = Group.objects.filter(pk__in=pk_set, name__in=Role.values)
        roles, verb = sorted(given.values_list("name", flat=True)), "given to"
    elif action == "post_remove":
        roles, verb = getattr(instance, "_audit_roles_losing", []), "taken from"
    else:
        return
    if roles:
        audit_record(
            action=AuditAction.ROLE_CHANGED, actor=None, target=f"user {instance.get_username()}",
            summary=f"{', '.join(roles)} role {verb} {instance.get_username()}",
            detail={"user_id": instance.pk, "change": "added" if action == "post_add" else "removed", "roles": roles},
        )  # fmt: skip
