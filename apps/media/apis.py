from django.conf import settings
from django.core.exceptions import TooManyFilesSent
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.pages import MAX_DB_INT
from apps.core.permissions import Action, authorize
from apps.jobs.apis import JobOutputSerializer
from apps.media import selectors, services
from apps.projects.selectors import project_get


class AssetOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    sha256 = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    original_name = serializers.CharField()
    video = serializers.IntegerField(source="video_id", allow_null=True)
    timestamp_seconds = serializers.FloatField(allow_null=True)
    image_url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()

    def get_image_url(self, asset) -> str:
        return reverse("media:image", args=[asset.id])

    def get_thumbnail_url(self, asset) -> str:
        return reverse("media:thumb", args=[asset.id])


class VideoOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    original_name = serializers.CharField()
    sha256 = serializers.CharField()
    container = serializers.CharField()
    codec = serializers.CharField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    duration_seconds = serializers.FloatField()
    fps = serializers.FloatField()
    sample_every_seconds = serializers.FloatField()
    frame_count = serializers.IntegerField()


class AssetListApi(APIView):
    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "AssetListOutput"

        results = AssetOutputSerializer(many=True)
        next_after = serializers.IntegerField(allow_null=True)

    @extend_schema(
        operation_id="projects_assets_list",
        parameters=[
            OpenApiParameter("video", int),
            OpenApiParameter("t_from", float),
            OpenApiParameter("t_to", float),
            OpenApiParameter("after", int, description="keyset: the last id of the previous page"),
            OpenApiParameter("limit", int),
        ],
        responses={200: OutputSerializer},
    )
    def get(self, request, project_id: int):
        project = project_get(user=request.user, project_id=project_id)
        params = _AssetQuery(data=request.query_params)
        params.is_valid(raise_exception=True)
        query = params.validated_data
        video_id = query.pop("video", None)
        assets, next_after = selectors.asset_page(project=project, video_id=video_id, **query)
        return Response(self.OutputSerializer({"results": assets, "next_after": next_after}).data)


class _AssetQuery(serializers.Serializer):
    video = serializers.IntegerField(required=False, min_value=1, max_value=MAX_DB_INT)
    t_from = serializers.FloatField(required=False, min_value=0)
    t_to = serializers.FloatField(required=False, min_value=0)
    after = serializers.IntegerField(required=False, min_value=0, max_value=MAX_DB_INT)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=500)


class _SampleEvery(serializers.Serializer):
    sample_every_seconds = serializers.FloatField(min_value=0.04, max_value=3600)


class AssetDetailApi(APIView):
    @extend_schema(responses={200: AssetOutputSerializer})
    def get(self, request, project_id: int, asset_id: int):
        project = project_get(user=request.user, project_id=project_id)
        asset = selectors.asset_get(user=request.user, asset_id=asset_id, project=project)
        return Response(AssetOutputSerializer(asset).data)


class VideoListApi(APIView):
    @extend_schema(responses={200: VideoOutputSerializer(many=True)})
    def get(self, request, project_id: int):
        project = project_get(user=request.user, project_id=project_id)
        return Response(VideoOutputSerializer(selectors.video_list(project=project), many=True).data)


class IngestUploadApi(APIView):
    """Upload images, zip archives of images and videos; they are ingested by a job (202)."""

    parser_classes = [MultiPartParser]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "IngestUploadInput"

        files = serializers.ListField(child=serializers.FileField(), allow_empty=False)
        sample_every_seconds = serializers.FloatField(required=False, default=1.0, min_value=0.04, max_value=3600)

    @extend_schema(request=InputSerializer, responses={202: JobOutputSerializer})
    def post(self, request, project_id: int):
        project = project_get(user=request.user, project_id=project_id)
        authorize(request.user, Action.INGEST_MEDIA)
        try:
            files = request.FILES.getlist("files")
        except TooManyFilesSent:
            raise serializers.ValidationError(
                {"detail": f"Too many files in one upload; the limit is {settings.DATA_UPLOAD_MAX_NUMBER_FILES}."}
            ) from None
        oversize = [
            {"name": services.display_name(name), "reason": f"Over the {settings.INGEST_MAX_FILE_BYTES:,}-byte limit."}
            for name in getattr(request._request, "oversize_uploads", [])
        ]
        every = _SampleEvery(data={"sample_every_seconds": request.POST.get("sample_every_seconds", 1.0)})
        every.is_valid(raise_exception=True)
        job = services.ingest_start(
            project=project,
            uploads=files,
            created_by=request.user,
            sample_every_seconds=every.validated_data["sample_every_seconds"],
            refused=oversize,
        )
        return Response(JobOutputSerializer(job).data, status=status.HTTP_202_ACCEPTED)
