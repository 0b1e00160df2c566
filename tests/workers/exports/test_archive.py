"""pack_zip: an export folder as one zip, images stored, text deflated, to any writable stream."""

import io
import zipfile

import pytest

from workers.exports import ExportConfig, pack_zip, write_export


class WriteOnlyStream(io.RawIOBase):
    """A sink that cannot seek or tell, like a streamed HTTP response."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, chunk) -> int:
        self.data.extend(chunk)
        return len(chunk)


@pytest.fixture
def exported(records, tmp_path):
    out = tmp_path / "export"
    write_export(records, out, ExportConfig(format="kohya"))
    return out


def test_the_zip_holds_every_file_with_the_right_compression(exported, tmp_path):
    with open(tmp_path / "export.zip", "wb") as dest:
        count = pack_zip(exported, dest)
    files = sorted(path for path in exported.rglob("*") if path.is_file())
    with zipfile.ZipFile(tmp_path / "export.zip") as archive:
        assert archive.testzip() is None
        infos = {info.filename: info for info in archive.infolist()}
        assert count == len(files) == len(infos)
        for path in files:
            name = path.relative_to(exported).as_posix()
            assert archive.read(name) == path.read_bytes()
            expected = zipfile.ZIP_STORED if path.suffix in {".jpg", ".jpeg"} else zipfile.ZIP_DEFLATED
            assert infos[name].compress_type == expected, name
    assert "images/000001.txt" in infos and "meta_cap.json" in infos


def test_a_non_seekable_destination_and_a_root_folder(exported):
    sink = WriteOnlyStream()
    pack_zip(exported, sink, arc_root="vive-export-7")
    with zipfile.ZipFile(io.BytesIO(bytes(sink.data))) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
    assert names and all(name.startswith("vive-export-7/") for name in names)
    assert "vive-export-7/manifest.json" in names


def test_the_same_folder_gives_the_same_zip(exported):
    first, second = io.BytesIO(), io.BytesIO()
    pack_zip(exported, first)
    pack_zip(exported, second)
    assert first.getvalue() == second.getvalue()


def test_a_missing_folder_is_refused(tmp_path):
    with pytest.raises(NotADirectoryError):
        pack_zip(tmp_path / "nowhere", io.BytesIO())
