"""DRF glue: application errors become 400s with a readable message; list answers paginated
by limit and offset, and described so in the schema."""

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from apps.core.errors import ApplicationError


def exception_handler(exc, context):
    if isinstance(exc, ApplicationError):
        body = {"detail": exc.message}
        if exc.field:
            body["field"] = exc.field
        body.update(exc.extra)
        return Response(body, status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)


def api_error(message: str) -> exceptions.ValidationError:
    return exceptions.ValidationError({"detail": message})


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    """Pages of at most MAX_LIMIT rows; an offset past what a database integer holds is a 400,
    not the database's overflow error (a 500)."""

    max_limit = 500
    MAX_OFFSET = 10**12

    def get_offset(self, request) -> int:
        offset = super().get_offset(request)
        if offset > self.MAX_OFFSET:
            raise exceptions.ValidationError({"offset": f"The offset must be at most {self.MAX_OFFSET:,}."})
        return offset


def paginated_response(request, view, queryset, serializer_class) -> Response:
    """One page of `queryset` (?limit=&offset=) as {count, next, previous, results}."""
    paginator = BoundedLimitOffsetPagination()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True).data)


def paginated_schema(serializer_class, *, parameters: list[OpenApiParameter] = (), **options):
    """`extend_schema` for a GET answered by `paginated_response`: its limit and offset, and the
    page's shape (an APIView gets neither from drf-spectacular by itself)."""
    name = serializer_class.__name__.removesuffix("Serializer")
    page = inline_serializer(
        name=f"Paginated{name}List",
        fields={
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": serializer_class(many=True),
        },
    )
    return extend_schema(
        parameters=[OpenApiParameter("limit", int), OpenApiParameter("offset", int), *parameters],
        responses={200: page},
        **options,
    )
