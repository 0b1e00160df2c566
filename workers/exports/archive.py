"""A finished export folder as one zip, streamed, for the web download.

Files are copied in chunks, so memory stays flat however large the export; `dest` may be a
non-seekable stream (zipfile then writes data descriptors). Images and tar shards are already
compressed and are stored as they are; text is deflated. Entries are sorted and dated 1980-01-01,
so the same folder gives the same zip.
"""

import os
import shutil
import zipfile
from pathlib import Path
from typing import BinaryIO

STORED_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".tar", ".zip", ".gz", ".mp4", ".webm"})
_CHUNK = 1024 * 1024
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can carry


def pack_zip(src_dir: Path | str, dest: BinaryIO, arc_root: str = "") -> int:
    """Zip every file under `src_dir` into `dest`, under the folder `arc_root` if given; returns the count."""
    src_dir = Path(src_dir)
    if not src_dir.is_dir():
        raise NotADirectoryError(f"{src_dir} is not a folder.")
    prefix = arc_root.strip("/") + "/" if arc_root.strip("/") else ""
    count = 0
    with zipfile.ZipFile(dest, "w", allowZip64=True) as archive:
        for path in _files(src_dir):
            relative = path.relative_to(src_dir).as_posix()
            info = zipfile.ZipInfo(prefix + relative, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_STORED if path.suffix.lower() in STORED_SUFFIXES else zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            size = path.stat().st_size
            info.file_size = size
            with open(path, "rb") as source, archive.open(info, "w", force_zip64=size >= zipfile.ZIP64_LIMIT) as out:
                shutil.copyfileobj(source, out, _CHUNK)
            count += 1
    return count


def _files(root: Path):
    """Regular files under root in a stable order; links are skipped, never followed out of it."""
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            path = Path(folder) / name
            if path.is_file() and not path.is_symlink():
                yield path
