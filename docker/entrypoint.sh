#!/bin/sh
# Container entrypoint for VIVECaption Studio.
#
#   entrypoint.sh web [extra gunicorn args]  -> migrate, collectstatic, gunicorn
#   entrypoint.sh <anything else>            -> exec it as-is (celery, manage.py, sh, ...)
set -e

if [ "${1:-web}" = "web" ]; then
    [ "$#" -gt 0 ] && shift

    # Only the web service migrates; workers and beat just exec celery, so
    # there is a single writer of schema changes.
    python manage.py migrate --noinput

    # The shared `var` volume is mounted over /app/var, which hides the static
    # files collected into the image at build time (a named volume is only
    # seeded from the image on first creation). Re-collect on every start so
    # whitenoise always serves the assets matching this image's code.
    python manage.py collectstatic --noinput

    exec gunicorn vivecaption_site.wsgi:application \
        -b 0.0.0.0:8000 \
        --workers 3 \
        --timeout 120 \
        --access-logfile - \
        --error-logfile - \
        "$@"
fi

exec "$@"
