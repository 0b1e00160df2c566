"""Static files as production and the demo serve them: collected under hashed names, gzip
copies beside them, cached for good; and each chart page loads the smallest plotly bundle that
draws its charts."""

import gzip
import re
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.management import call_command
from django.http import HttpResponse
from django.test import RequestFactory, override_settings
from whitenoise.middleware import WhiteNoiseMiddleware

ROOT = Path(settings.BASE_DIR)
FULL, BASIC = "vendor/plotly-4.1.1.min.js", "vendor/plotly-basic-4.1.1.min.js"


def test_collected_static_files_are_hashed_compressed_and_cached_for_good(tmp_path):
    collected = {"BACKEND": "apps.core.static_storage.CollectedStaticStorage"}  # the demo's (DEBUG on)
    with override_settings(
        STATIC_ROOT=tmp_path,
        STORAGES={**settings.STORAGES, "staticfiles": collected},
        WHITENOISE_USE_FINDERS=False,
        WHITENOISE_AUTOREFRESH=False,
        DEBUG=True,
    ):
        call_command("collectstatic", interactive=False, verbosity=0)
        url = staticfiles_storage.url(BASIC)
        assert re.fullmatch(r"/static/vendor/plotly-basic-4\.1\.1\.min\.[0-9a-f]{12}\.js", url), url
        serve = WhiteNoiseMiddleware(lambda request: HttpResponse(status=404))
        response = serve(RequestFactory().get(url, HTTP_ACCEPT_ENCODING="gzip, deflate"))
        body = b"".join(response.streaming_content)
    original = (ROOT / "static" / BASIC).read_bytes()
    assert response.status_code == 200 and response["Content-Encoding"] == "gzip"
    assert gzip.decompress(body) == original and len(body) < 0.4 * len(original)
    assert "immutable" in response["Cache-Control"] and "max-age=315360000" in response["Cache-Control"]


def _scripts(template: str) -> tuple[set[str], set[str]]:
    """(the plotly bundles, the app's own scripts) a template loads."""
    names = set(re.findall(r"""\{% static ['"]([^'"]+\.js)['"] %\}""", template))
    return {n for n in names if "plotly" in n}, {n for n in names if n.startswith("js/")}


def test_each_chart_page_loads_the_smallest_plotly_bundle_that_draws_its_charts():
    """The basic bundle (scatter, bar, pie: 1.2 MB) unless the page draws WebGL points (the
    projection's scattergl needs the full 4.6 MB one)."""
    pages = 0
    for path in (ROOT / "templates").rglob("*.html"):
        bundles, scripts = _scripts(path.read_text())
        if not bundles:
            continue
        pages += 1
        own = "".join((ROOT / "static" / script).read_text() for script in scripts)
        needed = FULL if "scattergl" in own else BASIC
        assert bundles == {needed}, (path.name, bundles)
    assert pages >= 5
