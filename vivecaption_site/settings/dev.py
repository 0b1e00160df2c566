"""Local development and `make demo`: the embedded defaults, debug pages on."""

from .base import *  # noqa: F403
from .base import STATIC_ROOT, env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# The demo's web server (bin/demo) serves collected static files as production does: hashed
# names cached for good, gzip-compressed (plotly is megabytes). Plain `runserver` work reads
# static/ as it changes.
if env.bool("VIVE_COLLECTED_STATIC", default=False):
    STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "apps.core.static_storage.CollectedStaticStorage"}}  # noqa: F405
    WHITENOISE_USE_FINDERS = False
    WHITENOISE_AUTOREFRESH = False

# whitenoise warns when STATIC_ROOT is missing; collectstatic fills it in production.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
