"""Reviewers' workspace: two caption runs over the same frames compared field by field, blind A/B
votes, corrections (new revisions; the model's caption is kept) and flags a lead resolves."""

from django.conf import settings
from django.db import models

from apps.core.models import BaseModel

FIELDS = ("scene", "background", "characters", "salient_objects")  # the caption schema's
VOTE_FIELDS = (*FIELDS, "overall")


class Review(BaseModel):
    """A baseline's captions against a candidate's (e.g. the base detector's pipeline against the
    fine-tuned one's), over the frames both captioned; other runs may be shown beside them."""

    project = models.ForeignKey("projects.Project", on_delete=models.CASCADE, related_name="reviews")
    name = models.CharField(max_length=200)
    comparison = models.ForeignKey(
        "evaluation.Comparison", null=True, blank=True, on_delete=models.SET_NULL, related_name="reviews"
    )
    baseline = models.ForeignKey("captioning.CaptionRun", on_delete=models.PROTECT, related_name="+")
    candidate = models.ForeignKey("captioning.CaptionRun", on_delete=models.PROTECT, related_name="+")
    baseline_label = models.CharField(max_length=300)
    candidate_label = models.CharField(max_length=300)
    # Further runs over the same frames, shown (labelled) beside the two when not blind.
    context_runs = models.JSONField(default=list, help_text="[[caption run id, label], …]")
    frame_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.name


class ReviewFrame(models.Model):
    """One frame of a review, with what its filters read worked out once when the review is made:
    a page reads one row, and filtering is an indexed query whatever the number of frames."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="frames")
    position = models.PositiveIntegerField()
    asset = models.ForeignKey("media.Asset", on_delete=models.CASCADE, related_name="+")
    baseline_caption = models.ForeignKey("captioning.Caption", on_delete=models.CASCADE, related_name="+")
    candidate_caption = models.ForeignKey("captioning.Caption", on_delete=models.CASCADE, related_name="+")
    # judge overall score, candidate minus baseline (null: not judged)
    judge_difference = models.FloatField(null=True)
    judge_baseline = models.JSONField(default=dict, blank=True, help_text="field → score")
    judge_candidate = models.JSONField(default=dict, blank=True, help_text="field → score")
    adherence_failed = models.BooleanField(default=False, help_text="either caption is out of the schema")
    detectors_disagree = models.BooleanField(default=False, help_text="the two were given other characters")
    reference_names = models.JSONField(null=True, blank=True, help_text="gold (or the demo world's) characters")
    reference_kind = models.CharField(max_length=40, blank=True)

    class Meta:
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["review", "position"], name="review_frame_position"),
            models.UniqueConstraint(fields=["review", "asset"], name="review_frame_asset"),
        ]

    def __str__(self) -> str:
        return f"{self.review}: frame {self.position + 1}"


class ReviewFrameCharacter(models.Model):
    """A character a frame's filter finds it by: named by either caption, given to either, or in
    the reference (casefolded). Its own indexed rows, so the filter is a join, not a scan."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="+")
    frame = models.ForeignKey(ReviewFrame, on_delete=models.CASCADE, related_name="character_marks")
    name = models.CharField(max_length=100)

    class Meta:
        indexes = [models.Index(fields=["review", "name"], name="review_frame_character")]
        constraints = [models.UniqueConstraint(fields=["frame", "name"], name="review_frame_character_once")]

    def __str__(self) -> str:
        return f"{self.frame}: {self.name}"


class Preference(models.TextChoices):
    CANDIDATE = "candidate", "candidate better"
    SAME = "same", "the same"
    BASELINE = "baseline", "baseline better"


class CaptionFlagKind(models.TextChoices):
    HALLUCINATED = "hallucinated_character", "hallucinated character"
    WRONG_NAME = "wrong_name", "wrong name"
    MISSING_OBJECT = "missing_object", "missing object"
    WRONG_BACKGROUND = "wrong_background", "wrong background"
    CORRECTED = "corrected", "corrected by a reviewer"
    OTHER = "other", "other"


class ReviewVote(BaseModel):
    """One reviewer's verdict on one frame, stored unblinded (baseline / candidate) with the side
    the candidate was shown on."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="votes")
    frame = models.ForeignKey(ReviewFrame, on_delete=models.CASCADE, related_name="votes")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    candidate_shown_as = models.CharField(max_length=1, help_text="A or B")
    choices = models.JSONField(default=dict, help_text="field (and overall) → candidate | same | baseline")
    comment = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["frame", "reviewer"], name="review_vote_once")]


class CaptionRevision(BaseModel):
    """A person's correction of a caption: a new revision; the model's caption stays as it was."""

    caption = models.ForeignKey("captioning.Caption", on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    fields = models.JSONField(help_text="scene, background, characters, salient_objects")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["caption_id", "number"]
        constraints = [models.UniqueConstraint(fields=["caption", "number"], name="caption_revision_number")]


class CaptionFlag(BaseModel):
    caption = models.ForeignKey("captioning.Caption", on_delete=models.CASCADE, related_name="review_flags")
    review = models.ForeignKey(Review, null=True, blank=True, on_delete=models.SET_NULL, related_name="flags")
    kind = models.CharField(max_length=30, choices=CaptionFlagKind.choices)
    comment = models.CharField(max_length=1000, blank=True)
    raised_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolution = models.CharField(max_length=1000, blank=True)

    class Meta:
        indexes = [models.Index(fields=["resolved_at"], name="caption_flag_open")]
        constraints = [
            models.UniqueConstraint(
                fields=["caption", "kind", "raised_by"],
                condition=models.Q(resolved_at__isnull=True),
                name="caption_flag_open_once",
            )
        ]


class ReviewPlace(models.Model):
    """Where a reviewer stopped in a review: their queue opens there again."""

    review = models.ForeignKey(Review, on_delete=models.CASCADE, related_name="places")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["review", "reviewer"], name="review_place_once")]

    def __str__(self) -> str:
        return f"{self.review}: {self.reviewer} at frame {self.position + 1}"


class PairwiseJudgement(BaseModel):
    """A judge model's pairwise verdict on one frame of a review (both orders asked), beside the
    reviewers' votes: which judge mode — 1–10 scores or pairwise — agrees better with people."""

    frame = models.ForeignKey(ReviewFrame, on_delete=models.CASCADE, related_name="pairwise_judgements")
    judge = models.ForeignKey("modelhub.ModelVersion", on_delete=models.CASCADE, related_name="+")
    job = models.ForeignKey("jobs.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=20, help_text="ok | unparsable | error")
    preferences = models.JSONField(null=True, blank=True, help_text="field → +1 candidate better, 0, -1")
    forward = models.JSONField(null=True, blank=True, help_text="answer with the candidate as B")
    backward = models.JSONField(null=True, blank=True, help_text="answer with the candidate as A")
    raw_forward = models.TextField(blank=True)
    raw_backward = models.TextField(blank=True)
    error = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["frame", "judge"], name="pairwise_judgement_once")]

    def __str__(self) -> str:
        return f"{self.judge} on {self.frame}: {self.status}"
