"""How pages name things that live on the server: a folder by its name alone, never its full path
(the path is the server's business, not the reader's)."""

import re
from pathlib import PurePath

SCHEME = re.compile(r"[a-z][a-z0-9+.-]*:")


def without_server_path(value: str) -> str:
    """A hub id or served name as it is; a local folder (absolute or relative, optionally behind a
    `scheme:` prefix such as open_clip's `local-dir:`) by its last part."""
    scheme = SCHEME.match(value)
    if scheme and value[scheme.end() :].startswith(("/", ".")):
        return without_server_path(value[scheme.end() :])
    path = PurePath(value)
    return path.name if value and (path.is_absolute() or value.startswith(".")) else value
