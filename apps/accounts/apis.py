from django.contrib.auth import authenticate
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.authtoken.models import Token
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.throttling import AnonRateThrottle
from rest_framework.views import APIView

from apps.core.permissions import user_role


class TokenObtainApi(APIView):
    """Exchange username + password for an API token (send it as `Authorization: Token <key>`)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [AnonRateThrottle]  # password guessing: see REST_FRAMEWORK's rates

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "TokenObtainInput"

        username = serializers.CharField()
        password = serializers.CharField(style={"input_type": "password"})

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "TokenObtainOutput"

        token = serializers.CharField()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = authenticate(request, **data.validated_data)
        if user is None:
            raise serializers.ValidationError({"detail": "Wrong username or password."})
        token, _ = Token.objects.get_or_create(user=user)
        return Response(self.OutputSerializer({"token": token.key}).data)


class MeApi(APIView):
    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "MeOutput"

        id = serializers.IntegerField()
        username = serializers.CharField()
        role = serializers.CharField(allow_null=True)

    @extend_schema(responses={200: OutputSerializer})
    def get(self, request):
        user = request.user
        return Response(self.OutputSerializer({"id": user.id, "username": user.username, "role": user_role(user)}).data)
