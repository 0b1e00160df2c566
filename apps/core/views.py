from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.shortcuts import redirect


def home(request: HttpRequest):
    return redirect("projects:list")


def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness for load balancers and docker healthchecks: the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
