"""The export API: start an export, follow it, preview what the filters keep, download the archive."""

from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.captioning.models import CaptionRun
from apps.core.errors import ApplicationError
from apps.core.pages import MAX_DB_INT
from apps.core.permissions import Action, authorize
from apps.exports import selectors, services
from apps.exports.models import ExportFormat, ExportSource
from apps.projects.selectors import project_get


class ExportFiltersSerializer(serializers.Serializer):
    min_judge_score = serializers.FloatField(min_value=1, max_value=10, required=False, allow_null=True)
    require_adherence = serializers.BooleanField(required=False, default=False)
    exclude_flagged = serializers.BooleanField(required=False, default=False)
    only_reviewed = serializers.BooleanField(required=False, default=False)
    only_with_characters = serializers.BooleanField(required=False, default=False)


class ExportOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    source = serializers.CharField()
    caption_run_id = serializers.IntegerField(allow_null=True)
    format = serializers.CharField()
    template = serializers.CharField()
    shard_size = serializers.IntegerField()
    filters = ExportFiltersSerializer()
    status = serializers.CharField(source="job.status", allow_null=True)
    progress = serializers.FloatField(source="job.progress", allow_null=True)
    frames = serializers.IntegerField()
    archive_bytes = serializers.IntegerField()
    lint = serializers.JSONField()
    download_url = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def get_download_url(self, export) -> str | None:
        if not export.archive:
            return None
        return reverse("exports:download", args=[export.project_id, export.id])


def _project(request, project_id: int):
    project = project_get(user=request.user, project_id=project_id)
    authorize(request.user, Action.EXPORT_DATASET)
    return project


def _run(project, run_id: int | None) -> CaptionRun | None:
    if run_id is None:
        return None
    run = CaptionRun.objects.filter(project=project, id=run_id).first()
    if run is None:
        raise ApplicationError(f"No caption run #{run_id} in this project.", field="caption_run")
    return run


class ExportListCreateApi(APIView):
    """The project's newest exports (GET), or start one (POST: a job; follow it at its detail)."""

    class ExportCreateInputSerializer(serializers.Serializer):
        source = serializers.ChoiceField(choices=ExportSource.choices, default=ExportSource.BEST)
        caption_run = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=MAX_DB_INT)
        format = serializers.ChoiceField(choices=ExportFormat.choices)
        template = serializers.CharField(required=False, max_length=500)
        shard_size = serializers.IntegerField(required=False, default=1000, min_value=1)
        filters = ExportFiltersSerializer(required=False)

    @extend_schema(responses={200: ExportOutputSerializer(many=True)}, operation_id="export_list")
    def get(self, request, project_id: int):
        project = _project(request, project_id)
        exports = selectors.export_list(project=project)[:100]
        return Response(ExportOutputSerializer(exports, many=True).data)

    @extend_schema(
        request=ExportCreateInputSerializer, responses={201: ExportOutputSerializer}, operation_id="export_create"
    )
    def post(self, request, project_id: int):
        project = _project(request, project_id)
        data = self.ExportCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        export = services.export_start(
            project=project,
            created_by=request.user,
            format=values["format"],
            source=values["source"],
            caption_run=_run(project, values.get("caption_run")),
            template=values.get("template"),
            shard_size=values["shard_size"],
            filters=dict(values.get("filters") or {}),
        )
        return Response(ExportOutputSerializer(export).data, status=status.HTTP_201_CREATED)


class ExportDetailApi(APIView):
    @extend_schema(responses={200: ExportOutputSerializer})
    def get(self, request, project_id: int, export_id: int):
        project = _project(request, project_id)
        return Response(ExportOutputSerializer(selectors.export_get(project=project, export_id=export_id)).data)


class ExportPreviewApi(APIView):
    """How many frames the source has, how many each filter keeps, and the lint of what the export
    would write: the same as the form's preview."""

    class ExportPreviewInputSerializer(ExportFiltersSerializer):
        source = serializers.ChoiceField(choices=ExportSource.choices, default=ExportSource.BEST)
        caption_run = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=MAX_DB_INT)
        template = serializers.CharField(required=False, max_length=500)

    class ExportPreviewOutputSerializer(serializers.Serializer):
        captioned = serializers.IntegerField()
        exportable = serializers.IntegerField()
        kept_by = serializers.DictField(child=serializers.IntegerField())
        kept = serializers.IntegerField()
        lint = serializers.JSONField(allow_null=True)

    @extend_schema(
        request=ExportPreviewInputSerializer,
        responses={200: ExportPreviewOutputSerializer},
        operation_id="export_preview",
    )
    def post(self, request, project_id: int):
        from workers.exports.dense import DEFAULT_TEMPLATE

        project = _project(request, project_id)
        data = self.ExportPreviewInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        source, run_id = values.pop("source"), values.pop("caption_run", None)
        template = values.pop("template", DEFAULT_TEMPLATE)
        run = _run(project, run_id)
        if source == ExportSource.RUN and run is None:
            raise ApplicationError("Pick the caption run to export.", field="caption_run")
        try:
            preview = selectors.export_preview(
                project=project,
                source=source,
                filters=selectors.ExportFilters.from_mapping(values),
                caption_run=run,
                template=template,
            )
        except ValueError as exc:
            raise ApplicationError(str(exc)) from None
        return Response(self.ExportPreviewOutputSerializer(preview.to_dict()).data)
