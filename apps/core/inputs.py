"""What a run's output depends on, as one short key.

A detection, caption, training or evaluation run records the key of its inputs when it starts: the
model versions as they run, the roster as the models see it, the frames, the settings. A run started
again with the same key would compute the same thing, so `--reuse` (a second `make demo`) shows the
earlier run instead of making a duplicate.
"""

import hashlib
import json
from typing import Any

from django.db.models import QuerySet


def inputs_key(inputs: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


def done_before(runs: QuerySet, key: str):
    """The newest of `runs` with these inputs whose job succeeded (its result is the command's
    output), or None."""
    return runs.filter(inputs_key=key, job__status="succeeded").select_related("job").order_by("-id").first()
