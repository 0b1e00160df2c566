# Users are Django's own; roles are groups created by migration 0001 (see apps.core.permissions).
