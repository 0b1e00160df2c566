"""htmx helpers."""

from django.http import HttpResponse

# htmx stops polling when a response carries this status (see htmx docs, "hx-trigger every").
HTMX_STOP_POLLING = 286


def stop_polling(response: HttpResponse) -> HttpResponse:
    response.status_code = HTMX_STOP_POLLING
    return response
