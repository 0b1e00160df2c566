"""Read images out of zip archives without trusting the archive.

Nothing is ever extracted by member name: members are read into memory (bounded) and handed on
as bytes, so `../` names and symlinks cannot write anywhere; they are refused and reported.
"""

import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath


@dataclass(frozen=True)
class ArchiveLimits:
    max_members: int = 10_000
    max_member_bytes: int = 50 * 1024 * 1024
    max_total_bytes: int = 4 * 1024 * 1024 * 1024
    max_compression_ratio: float = 200.0  # a zip bomb compresses far better than any image


@dataclass(frozen=True)
class ArchiveMember:
    name: str  # for people to read; never used as a path
    data: bytes | None
    error: str | None = None


class ArchiveRejected(ValueError):
    pass


def _unsafe_name(name: str) -> str | None:
    normalized = name.replace("\\", "/")
    path = PurePosixPath(normalized)
    if normalized.startswith("/") or (len(normalized) > 1 and normalized[1] == ":"):
        return "absolute path in the archive"
    if ".." in path.parts:
        return "'..' in the member's path"
    return None


def iter_archive_members(path: Path, limits: ArchiveLimits = ArchiveLimits()) -> Iterator[ArchiveMember]:
    """Yield each file member with its bytes, or with the reason it was refused."""
    if not zipfile.is_zipfile(path):
        raise ArchiveRejected("The file is not a zip archive.")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArchiveRejected(f"The zip archive is damaged: {exc}") from exc
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        if len(members) > limits.max_members:
            raise ArchiveRejected(f"The archive holds {len(members):,} files; the limit is {limits.max_members:,}.")
        total = 0
        for info in members:
            name = info.filename
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                yield ArchiveMember(name, None, "symbolic links are not accepted")
                continue
            if reason := _unsafe_name(name):
                yield ArchiveMember(name, None, reason)
                continue
            if info.flag_bits & 0x1:
                yield ArchiveMember(name, None, "encrypted members are not accepted")
                continue
            if info.file_size > limits.max_member_bytes:
                yield ArchiveMember(
                    name, None, f"{info.file_size:,} bytes uncompressed; the limit is {limits.max_member_bytes:,}"
                )
                continue
            if info.compress_size and info.file_size / info.compress_size > limits.max_compression_ratio:
                yield ArchiveMember(name, None, "suspicious compression ratio (possible zip bomb)")
                continue
            if total + info.file_size > limits.max_total_bytes:
                yield ArchiveMember(name, None, "the archive's total uncompressed size is over the limit")
                continue
            try:
                with archive.open(info) as handle:
                    # Read one byte past the limit: the header's size may lie.
                    data = handle.read(limits.max_member_bytes + 1)
            except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError) as exc:
                yield ArchiveMember(name, None, f"unreadable: {exc}")
                continue
            if len(data) > limits.max_member_bytes:
                yield ArchiveMember(name, None, "larger than its header says; refused")
                continue
            total += len(data)
            if data[:4] == b"PK\x03\x04":
                yield ArchiveMember(name, None, "archives inside archives are not accepted")
                continue
            yield ArchiveMember(name, data)
