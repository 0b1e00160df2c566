"""Embedding files: one compressed .npz per run holding `asset_ids` and `vectors` (worker side);
a sharded embedding stores one part per shard the same way, with the shard's summary as `meta`.

numpy is imported inside the functions: the web process never needs it on a request.
"""

import io
import json
import uuid
from typing import TYPE_CHECKING, Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

if TYPE_CHECKING:
    import numpy as np

    from apps.curation.models import EmbeddingRun


def vectors_to_file(asset_ids: list[int], vectors: "np.ndarray", meta: dict[str, Any] | None = None) -> ContentFile:
    import numpy as np

    buffer = io.BytesIO()
    arrays = {"asset_ids": np.asarray(asset_ids, dtype=np.int64), "vectors": vectors.astype(np.float32)}
    if meta is not None:
        arrays["meta"] = np.array(json.dumps(meta))
    np.savez_compressed(buffer, **arrays)
    return ContentFile(buffer.getvalue(), name=f"{uuid.uuid4().hex}.npz")


def _load(handle) -> tuple[list[int], "np.ndarray", dict[str, Any]]:
    import numpy as np

    data = np.load(io.BytesIO(handle.read()))
    meta = json.loads(str(data["meta"])) if "meta" in data.files else {}
    return data["asset_ids"].tolist(), data["vectors"], meta


def vectors_load(run: "EmbeddingRun") -> tuple[list[int], "np.ndarray"]:
    with run.vectors.open("rb") as handle:
        ids, vectors, _ = _load(handle)
        return ids, vectors


def vector_ids_load(run: "EmbeddingRun") -> list[int]:
    """Only the run's asset ids (the archive's small member: its vectors are not decompressed)."""
    import numpy as np

    with run.vectors.open("rb") as handle:
        return np.load(io.BytesIO(handle.read()))["asset_ids"].tolist()


def embedding_part_name(*, project_id: int, parent_id: int, start: int) -> str:
    """Where a shard of the embedding job `parent_id` keeps its vectors until the job joins them."""
    return f"projects/{project_id}/embeddings/parts/job-{parent_id}-{start:09d}.npz"


def vectors_load_file(name: str) -> tuple[list[int], "np.ndarray", dict[str, Any]]:
    """A part's ids, vectors and summary."""
    with default_storage.open(name, "rb") as handle:
        return _load(handle)
