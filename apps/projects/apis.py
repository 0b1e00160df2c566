from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.api import paginated_response, paginated_schema
from apps.core.permissions import Action, authorize
from apps.projects import selectors, services


class ReferenceImageOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    url = serializers.SerializerMethodField()

    def get_url(self, reference) -> str:
        return reverse("projects:reference_file", args=[reference.id])


class CharacterOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    aliases = serializers.ListField(child=serializers.CharField())
    description = serializers.CharField()
    references = ReferenceImageOutputSerializer(many=True)


class ProjectOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    caption_schema_version = serializers.IntegerField()
    clip_model_name = serializers.CharField()
    clip_pretrained = serializers.CharField()
    created_at = serializers.DateTimeField()


class ProjectListCreateApi(APIView):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ProjectListCreateInput"

        name = serializers.CharField(max_length=200)
        description = serializers.CharField(required=False, allow_blank=True, default="")

    @paginated_schema(ProjectOutputSerializer, operation_id="projects_list")
    def get(self, request):
        authorize(request.user, Action.VIEW_PROJECT)
        return paginated_response(request, self, selectors.project_list(user=request.user), ProjectOutputSerializer)

    @extend_schema(request=InputSerializer, responses={201: ProjectOutputSerializer})
    def post(self, request):
        authorize(request.user, Action.CREATE_PROJECT)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        project = services.project_create(created_by=request.user, **data.validated_data)
        return Response(ProjectOutputSerializer(project).data, status=status.HTTP_201_CREATED)


class ProjectDetailApi(APIView):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ProjectDetailInput"

        name = serializers.CharField(max_length=200, required=False)
        description = serializers.CharField(required=False, allow_blank=True)
        clip_model_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
        clip_pretrained = serializers.CharField(max_length=500, required=False, allow_blank=True)

    @extend_schema(responses={200: ProjectOutputSerializer})
    def get(self, request, project_id: int):
        project = selectors.project_get(user=request.user, project_id=project_id)
        return Response(ProjectOutputSerializer(project).data)

    @extend_schema(request=InputSerializer, responses={200: ProjectOutputSerializer})
    def patch(self, request, project_id: int):
        project = selectors.project_get(user=request.user, project_id=project_id)
        authorize(request.user, Action.EDIT_PROJECT)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        project = services.project_update(project=project, **data.validated_data)
        return Response(ProjectOutputSerializer(project).data)


class CharacterListCreateApi(APIView):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CharacterListCreateInput"

        name = serializers.CharField(max_length=100)
        description = serializers.CharField(required=False, allow_blank=True, default="")
        aliases = serializers.ListField(child=serializers.CharField(max_length=100), required=False, default=list)

    @paginated_schema(CharacterOutputSerializer, operation_id="projects_characters_list")
    def get(self, request, project_id: int):
        project = selectors.project_get(user=request.user, project_id=project_id)
        return paginated_response(request, self, selectors.character_list(project=project), CharacterOutputSerializer)

    @extend_schema(request=InputSerializer, responses={201: CharacterOutputSerializer})
    def post(self, request, project_id: int):
        project = selectors.project_get(user=request.user, project_id=project_id)
        authorize(request.user, Action.EDIT_ROSTER)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        character = services.character_create(project=project, **data.validated_data)
        return Response(CharacterOutputSerializer(character).data, status=status.HTTP_201_CREATED)


class CharacterDetailApi(APIView):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "CharacterDetailInput"

        name = serializers.CharField(max_length=100, required=False)
        description = serializers.CharField(required=False, allow_blank=True)
        aliases = serializers.ListField(child=serializers.CharField(max_length=100), required=False)

    @extend_schema(responses={200: CharacterOutputSerializer})
    def get(self, request, project_id: int, character_id: int):
        project = selectors.project_get(user=request.user, project_id=project_id)
        character = selectors.character_get(project=project, character_id=character_id)
        return Response(CharacterOutputSerializer(character).data)

    @extend_schema(request=InputSerializer, responses={200: CharacterOutputSerializer})
    def patch(self, request, project_id: int, character_id: int):
        project = selectors.project_get(user=request.user, project_id=project_id)
        authorize(request.user, Action.EDIT_ROSTER)
        character = selectors.character_get(project=project, character_id=character_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        character = services.character_update(character=character, **data.validated_data)
        character = selectors.character_get(project=project, character_id=character.id)
        return Response(CharacterOutputSerializer(character).data)

    @extend_schema(responses={204: None})
    def delete(self, request, project_id: int, character_id: int):
        project = selectors.project_get(user=request.user, project_id=project_id)
        authorize(request.user, Action.EDIT_ROSTER)
        character = selectors.character_get(project=project, character_id=character_id)
        services.character_delete(character=character)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ReferenceImageUploadApi(APIView):
    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ReferenceImageUploadInput"

        image = serializers.FileField()

    @extend_schema(request=InputSerializer, responses={201: ReferenceImageOutputSerializer})
    def post(self, request, project_id: int, character_id: int):
        project = selectors.project_get(user=request.user, project_id=project_id)
        authorize(request.user, Action.EDIT_ROSTER)
        character = selectors.character_get(project=project, character_id=character_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        reference = services.reference_image_add(character=character, upload=data.validated_data["image"])
        return Response(ReferenceImageOutputSerializer(reference).data, status=status.HTTP_201_CREATED)
