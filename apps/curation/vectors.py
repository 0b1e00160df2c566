"""Embedding files: one compressed .npz per run holding `asset_ids` and `vectors` (worker side).

numpy is imported inside the functions: the web process never needs it on a request.
"""

import io
import uuid
from typing import TYPE_CHECKING

from django.core.files.base import ContentFile

if TYPE_CHECKING:
    import numpy as np

    from apps.curation.models import EmbeddingRun


def vectors_to_file(asset_ids: list[int], vectors: "np.ndarray") -> ContentFile:
    import numpy as np

    buffer = io.BytesIO()
    np.savez_compressed(buffer, asset_ids=np.asarray(asset_ids, dtype=np.int64), vectors=vectors.astype(np.float32))
    return ContentFile(buffer.getvalue(), name=f"{uuid.uuid4().hex}.npz")


def vectors_load(run: "EmbeddingRun") -> tuple[list[int], "np.ndarray"]:
    import numpy as np

    with run.vectors.open("rb") as handle:
        data = np.load(io.BytesIO(handle.read()))
        return data["asset_ids"].tolist(), data["vectors"]
