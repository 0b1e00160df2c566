"""Static files collected, hashed and gzipped, with hashed URLs even under DEBUG (the demo runs
with DEBUG on; Django's manifest storage gives unhashed URLs then, which browsers cannot cache
for good)."""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class CollectedStaticStorage(CompressedManifestStaticFilesStorage):
    def url(self, name, force=False):
        return super().url(name, force=True)
