"""The review API: the blind frame, votes, corrections and results, with the pages' permissions."""

from dataclasses import asdict

from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.core.pages import MAX_DB_INT, int_param
from apps.core.permissions import Action, authorize
from apps.projects.selectors import project_get
from apps.review import selectors, services
from apps.review.models import FIELDS, VOTE_FIELDS, CaptionFlagKind, ReviewFrame

SIDE = serializers.ChoiceField(choices=["A", "B"])


class ReviewOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    baseline_label = serializers.CharField()
    candidate_label = serializers.CharField()
    frame_count = serializers.IntegerField()
    comparison_id = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()


def _review(request, project_id: int, review_id: int, action: Action):
    project = project_get(user=request.user, project_id=project_id)
    authorize(request.user, action)
    return selectors.review_get(project=project, review_id=review_id)


def _frame(review, position: int) -> ReviewFrame:
    return get_object_or_404(ReviewFrame.objects.select_related("review"), review=review, position=position)


class ReviewListApi(APIView):
    @extend_schema(responses={200: ReviewOutputSerializer(many=True)})
    def get(self, request, project_id: int):
        project = project_get(user=request.user, project_id=project_id)
        authorize(request.user, Action.VIEW_PROJECT)
        return Response(ReviewOutputSerializer(selectors.review_list(project=project), many=True).data)


class ReviewFrameApi(APIView):
    """One frame as a blind reviewer sees it: captions A and B (their current revision), the
    characters each was given, the frame's reference characters, and this reviewer's vote."""

    @extend_schema(
        parameters=[OpenApiParameter("at", int, description="position in the review (default: where you stopped)")],
        responses={200: OpenApiTypes.OBJECT},
    )
    def get(self, request, project_id: int, review_id: int):
        review = _review(request, project_id, review_id, Action.REVIEW_CAPTIONS)
        raw = request.query_params.get("at", "")
        page = selectors.frame_page(
            review=review,
            reviewer=request.user,
            position=int_param(raw),
            filters=selectors.FrameFilters.from_query(request.query_params),
            blind=True,
        )
        if page is None:
            return Response({"detail": "No frame matches these filters."}, status=status.HTTP_404_NOT_FOUND)
        frame = page["frame"]
        return Response(
            {
                "position": frame.position,
                "index": page["index"],
                "total": page["total"],
                "previous": page["previous"],
                "next": page["next"],
                "asset_id": frame.asset_id,
                "image_url": reverse("media:image", args=[frame.asset_id]),
                "reference": {"kind": frame.reference_kind, "names": frame.reference_names},
                "captions": {
                    column["side"]: {
                        "fields": column["fields"],
                        "given": column["given"],
                        "revised": bool(column["revision"]),
                    }
                    for column in page["columns"]
                    if column["side"]
                },
                "vote": {"choices": page["shown_choices"], "comment": page["vote"].comment} if page["vote"] else None,
            }
        )


class VoteApi(APIView):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ReviewVoteInput"

        class FlagSerializer(serializers.Serializer):
            side = SIDE
            kind = serializers.ChoiceField(choices=[k.value for k in CaptionFlagKind if k != CaptionFlagKind.CORRECTED])

        position = serializers.IntegerField(min_value=0, max_value=MAX_DB_INT)
        choices = serializers.DictField(child=serializers.ChoiceField(choices=["A", "B", "same"]))
        comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)
        flags = FlagSerializer(many=True, required=False, default=list)

    @extend_schema(request=InputSerializer, responses={201: None})
    def post(self, request, project_id: int, review_id: int):
        review = _review(request, project_id, review_id, Action.REVIEW_CAPTIONS)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        vote = services.vote_record(
            frame=_frame(review, values["position"]),
            reviewer=request.user,
            choices=values["choices"],
            comment=values["comment"],
            flags=[(flag["side"], flag["kind"]) for flag in values["flags"]],
        )
        return Response({"id": vote.id, "stored": vote.choices}, status=status.HTTP_201_CREATED)


class CorrectionApi(APIView):
    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ReviewCorrectionInput"

        position = serializers.IntegerField(min_value=0, max_value=MAX_DB_INT)
        side = SIDE
        fields = serializers.DictField(help_text=f"any of {', '.join(FIELDS)}")
        note = serializers.CharField(required=False, allow_blank=True, default="", max_length=500)

    @extend_schema(request=InputSerializer, responses={201: None})
    def post(self, request, project_id: int, review_id: int):
        review = _review(request, project_id, review_id, Action.REVIEW_CAPTIONS)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        frame = _frame(review, values["position"])
        candidate_as = selectors.candidate_side(review.id, request.user.id, frame.asset_id)
        caption = frame.candidate_caption if values["side"] == candidate_as else frame.baseline_caption
        revision = services.caption_correct(
            caption=caption, fields=values["fields"], author=request.user, review=review, note=values["note"]
        )
        return Response({"revision": revision.number, "fields": revision.fields}, status=status.HTTP_201_CREATED)


class ResultsApi(APIView):
    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request, project_id: int, review_id: int):
        review = _review(request, project_id, review_id, Action.VIEW_PROJECT)
        results = selectors.review_results(review=review)
        return Response(
            {
                "votes": results["votes"],
                "frames_voted": results["frames_voted"],
                "win_rates": {row["field"]: asdict(row["result"]) for row in results["pooled"]},
                "per_reviewer": [
                    {
                        "reviewer": row["reviewer"],
                        "votes": row["votes"],
                        "win_rates": dict(zip(VOTE_FIELDS, map(asdict, row["fields"]), strict=True)),
                    }
                    for row in results["per_reviewer"]
                ],
                "reviewer_agreement": [
                    {
                        "reviewers": row["reviewers"],
                        "frames": row["frames"],
                        "fields": dict(zip(VOTE_FIELDS, map(asdict, row["fields"]), strict=True)),
                    }
                    for row in results["pairs"]
                ],
                "judge_agreement": {row["field"]: asdict(row["scores"]) for row in results["judge"]},
            }
        )
