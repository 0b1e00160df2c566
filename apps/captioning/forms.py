from django import forms

from apps.captioning.models import CaptionPipeline


class DetectionLaunchForm(forms.Form):
    detector = forms.TypedChoiceField(coerce=int)
    gold_set = forms.TypedChoiceField(coerce=int)

    def __init__(self, *args, detectors=(), gold_sets=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["detector"].choices = [(v.id, f"{v.name}{' (default)' if v.is_default else ''}") for v in detectors]
        self.fields["gold_set"].choices = [(g.id, f"{g} · {g.size} frames") for g in gold_sets]


class CaptionLaunchForm(forms.Form):
    captioner = forms.TypedChoiceField(coerce=int)
    pipeline = forms.ChoiceField(choices=CaptionPipeline.choices, initial=CaptionPipeline.DETECTION)
    detection_run = forms.TypedChoiceField(coerce=int, help_text="frames (and, for detector → captioner, characters)")
    limit = forms.IntegerField(min_value=1, required=False, help_text="caption only the first N frames")

    def __init__(self, *args, captioners=(), detection_runs=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["captioner"].choices = [
            (v.id, f"{v.name}{' (default)' if v.is_default else ''}") for v in captioners
        ]
        self.fields["detection_run"].choices = [
            (r.id, f"#{r.id} {r.model_version} · {r.done} frames") for r in detection_runs
        ]
