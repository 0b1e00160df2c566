# Read-only on the admin pages too: staff can look, nobody can add, change or delete an entry.
from django.contrib import admin

from apps.audit.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "actor_name", "action", "project_name", "target", "summary")
    list_filter = ("action",)
    search_fields = ("actor_name", "target", "summary", "project_name")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
