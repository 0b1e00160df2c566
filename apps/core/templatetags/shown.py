from django import template

from apps.core.shown import without_server_path as _without_server_path

register = template.Library()


@register.filter
def without_server_path(value: str) -> str:
    """`{{ meta.clip_model|without_server_path }}`: a local folder by its name, never its full path."""
    return _without_server_path(str(value or ""))
