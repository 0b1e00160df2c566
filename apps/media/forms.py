from django import forms

from apps.core.forms import MultipleFileField, MultipleFileInput


class AssetFilterForm(forms.Form):
    video = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    t_from = forms.FloatField(required=False, min_value=0, label="From (s)")
    t_to = forms.FloatField(required=False, min_value=0, label="To (s)")
    after = forms.IntegerField(required=False, min_value=0, widget=forms.HiddenInput)

    def __init__(self, *args, videos=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["video"].choices = [("", "all sources")] + [(v.id, v.original_name) for v in videos]


class IngestForm(forms.Form):
    files = MultipleFileField(
        widget=MultipleFileInput(attrs={"accept": "image/jpeg,image/png,image/webp,video/*,.zip,.mkv"}),
        required=False,
    )
    sample_every_seconds = forms.FloatField(
        initial=1.0, required=False, min_value=0.04, max_value=3600, label="Sample a frame every (s)"
    )
