"""Local file paths for stored files: decoders and models need paths, storage may be remote."""

import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from django.db.models.fields.files import FieldFile


@contextmanager
def local_paths(files: Sequence[FieldFile]) -> Iterator[list[Path]]:
    """The storage's own paths (local disk), or temporary copies removed on exit (object storage)."""
    paths: list[Path] = []
    temp_dir: Path | None = None
    try:
        for index, field_file in enumerate(files):
            try:
                paths.append(Path(field_file.path))
            except NotImplementedError:
                temp_dir = temp_dir or Path(tempfile.mkdtemp(prefix="vive-local-"))
                local = temp_dir / f"{index}{Path(field_file.name).suffix}"
                with field_file.storage.open(field_file.name, "rb") as source, open(local, "wb") as target:
                    shutil.copyfileobj(source, target)
                paths.append(local)
        yield paths
    finally:
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)
