from django import forms

from apps.core.forms import MultipleFileField, MultipleFileInput
from apps.projects.models import Character, Project


class ProjectForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = ["name", "description", "clip_model_name", "clip_pretrained"]
        labels = {"clip_model_name": "CLIP model (open_clip name)", "clip_pretrained": "CLIP weights"}
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}


class ProjectCreateForm(forms.ModelForm):
    """A new project: a name and a description; model choices come later, on its edit page."""

    class Meta:
        model = Project
        fields = ["name", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}


class CharacterForm(forms.ModelForm):
    aliases = forms.CharField(required=False, help_text="Comma-separated other names.")

    class Meta:
        model = Character
        fields = ["name", "aliases", "description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["aliases"] = ", ".join(self.instance.aliases)


class ReferenceImageForm(forms.Form):
    images = MultipleFileField(
        widget=MultipleFileInput(attrs={"accept": "image/png,image/jpeg,image/webp"}),
        help_text="PNG, JPEG or WebP; one or more.",
    )


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
