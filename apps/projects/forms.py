from django import forms

from apps.projects.models import Character, Project


class ProjectForm(forms.ModelForm):
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


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class ReferenceImagesField(forms.FileField):
    def clean(self, data, initial=None):
        files = data if isinstance(data, (list, tuple)) else [data]
        return [super(ReferenceImagesField, self).clean(f, initial) for f in files if f]


class ReferenceImageForm(forms.Form):
    images = ReferenceImagesField(
        widget=MultipleFileInput(attrs={"accept": "image/png,image/jpeg,image/webp"}),
        help_text="PNG, JPEG or WebP; one or more.",
    )


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
