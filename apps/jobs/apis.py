from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api import paginated_response, paginated_schema
from apps.core.permissions import Action, authorize
from apps.jobs import selectors, services
from apps.jobs.kinds import launchable_kinds
from apps.jobs.models import JobStatus
from apps.projects.selectors import project_get


class JobOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    project = serializers.IntegerField(source="project_id", allow_null=True)
    status = serializers.ChoiceField(choices=JobStatus.choices)
    queue = serializers.CharField()
    progress = serializers.FloatField()
    message = serializers.CharField()
    error = serializers.CharField()
    attempts = serializers.IntegerField()
    max_attempts = serializers.IntegerField()
    cancel_requested = serializers.BooleanField()
    params = serializers.JSONField()
    result = serializers.JSONField()
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    heartbeat_at = serializers.DateTimeField(allow_null=True)


class ProjectJobListCreateApi(APIView):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ProjectJobListCreateInput"

        kind = serializers.ChoiceField(choices=[])
        params = serializers.JSONField(required=False, default=dict)

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.fields["kind"].choices = [kind.name for kind in launchable_kinds()]

    @paginated_schema(
        JobOutputSerializer,
        parameters=[
            OpenApiParameter("status", str, enum=JobStatus.values),
            OpenApiParameter("ordering", str, enum=list(selectors.JOB_ORDERINGS)),
        ],
    )
    def get(self, request, project_id: int):
        project = project_get(user=request.user, project_id=project_id)
        authorize(request.user, Action.VIEW_JOBS)
        status_filter = request.query_params.get("status")
        if status_filter and status_filter not in JobStatus.values:
            raise serializers.ValidationError({"status": f"Unknown status {status_filter!r}."})
        ordering = request.query_params.get("ordering", "newest")
        if ordering not in selectors.JOB_ORDERINGS:
            raise serializers.ValidationError(
                {"ordering": f"Ordering must be one of {sorted(selectors.JOB_ORDERINGS)}."}
            )
        jobs = selectors.job_list(user=request.user, project=project, status=status_filter, ordering=ordering)
        return paginated_response(request, self, jobs, JobOutputSerializer)

    @extend_schema(request=InputSerializer, responses={201: JobOutputSerializer})
    def post(self, request, project_id: int):
        project = project_get(user=request.user, project_id=project_id)
        authorize(request.user, Action.LAUNCH_JOB)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        params = data.validated_data["params"]
        if not isinstance(params, dict):
            raise serializers.ValidationError({"params": "params must be a JSON object."})
        job = services.job_launch(
            kind=data.validated_data["kind"], project=project, created_by=request.user, params=params
        )
        return Response(JobOutputSerializer(job).data, status=status.HTTP_201_CREATED)


class JobDetailApi(APIView):
    @extend_schema(responses={200: JobOutputSerializer})
    def get(self, request, job_id: int):
        return Response(JobOutputSerializer(selectors.job_get(user=request.user, job_id=job_id)).data)


class JobCancelApi(APIView):
    @extend_schema(request=None, responses={200: JobOutputSerializer})
    def post(self, request, job_id: int):
        job = selectors.job_get(user=request.user, job_id=job_id)
        authorize(request.user, Action.CANCEL_JOB)
        return Response(JobOutputSerializer(services.job_cancel(job=job, cancelled_by=request.user)).data)
