from django import forms

from apps.modelhub.models import ModelRole


class ModelVersionForm(forms.Form):
    role = forms.ChoiceField(choices=ModelRole.choices)
    name = forms.CharField(max_length=200)
    backend = forms.ChoiceField(
        choices=[("transformers", "transformers (in the GPU worker)"), ("openai", "OpenAI-compatible server")]
    )
    model = forms.CharField(max_length=500, help_text="local folder or hub id; or the served model's name")
    adapter = forms.CharField(max_length=500, required=False, help_text="PEFT adapter folder (optional)")
    base_url = forms.URLField(required=False, assume_scheme="https", help_text="openai: e.g. http://vllm:8000/v1")
    api_key_env = forms.RegexField(
        regex=r"^VIVE_VLM_KEY_[A-Z0-9_]+$",
        max_length=100,
        required=False,
        help_text="environment variable with the API key; must start with VIVE_VLM_KEY_",
    )
