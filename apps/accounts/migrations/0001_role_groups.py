"""Create the three role groups with the model permissions that match apps.core.permissions.

The groups are what the application checks; the model permissions make Django's admin agree.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

# (app_label, codename) per role; leads write the roster and launch jobs, others read.
ROLE_PERMISSIONS = {
    "lead": [
        ("projects", "add_project"), ("projects", "change_project"), ("projects", "view_project"),
        ("projects", "add_character"), ("projects", "change_character"),
        ("projects", "delete_character"), ("projects", "view_character"),
        ("projects", "add_membership"), ("projects", "delete_membership"),
        ("projects", "view_membership"),
        ("jobs", "add_job"), ("jobs", "change_job"), ("jobs", "view_job"),
    ],
    "annotator": [
        ("projects", "view_project"), ("projects", "view_character"), ("jobs", "view_job"),
    ],
    "reviewer": [
        ("projects", "view_project"), ("projects", "view_character"), ("jobs", "view_job"),
    ],
}


def create_role_groups(apps, schema_editor):
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, permissions in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        for app_label, codename in permissions:
            group.permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )


def remove_role_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("projects", "0001_initial"),
        ("jobs", "0001_initial"),
    ]
    operations = [migrations.RunPython(create_role_groups, remove_role_groups)]
