"""Upload handling: files stream to disk; a file over the per-file limit is skipped and reported."""

from django.conf import settings
from django.core.files.uploadhandler import SkipFile, TemporaryFileUploadHandler


class SizeLimitedUploadHandler(TemporaryFileUploadHandler):
    """Writes uploads to temporary files (never memory) and skips any file past the limit.

    Skipped names are collected on `request.oversize_uploads` so the view can report them.
    """

    def new_file(self, field_name, file_name, *args, **kwargs):
        self.received = 0
        self.current_name = file_name
        super().new_file(field_name, file_name, *args, **kwargs)

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > settings.INGEST_MAX_FILE_BYTES:
            if not hasattr(self.request, "oversize_uploads"):
                self.request.oversize_uploads = []
            self.request.oversize_uploads.append(self.current_name)
            self.file.close()
            raise SkipFile()
        return super().receive_data_chunk(raw_data, start)
