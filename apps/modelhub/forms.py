from django import forms

from apps.modelhub.models import ModelRole
from apps.modelhub.servers import base_url_normalised
from workers.vlm.allowlist import URLRefused


class ModelVersionForm(forms.Form):
    role = forms.ChoiceField(choices=ModelRole.choices)
    name = forms.CharField(max_length=200)
    backend = forms.ChoiceField(
        choices=[("transformers", "transformers (in the GPU worker)"), ("openai", "OpenAI-compatible server")]
    )
    model = forms.CharField(max_length=500, help_text="local folder or hub id; or the served model's name")
    adapter = forms.CharField(max_length=500, required=False, help_text="PEFT adapter folder (optional)")
    # Not a URLField: Django's URL rules differ from the allow-list's (user-info passes there, a
    # compose service name like http://vllm:8000 does not); the allow-list's parser decides.
    base_url = forms.CharField(
        max_length=500,
        required=False,
        help_text="openai: e.g. http://vllm:8000/v1 — a server on this installation's VLM_ALLOWED_BASE_URLS",
    )
    api_key_env = forms.RegexField(
        regex=r"^VIVE_VLM_KEY_[A-Z0-9_]+$",
        max_length=100,
        required=False,
        help_text="environment variable with the API key; must start with VIVE_VLM_KEY_",
    )

    def clean_base_url(self) -> str:
        base_url = self.cleaned_data["base_url"]
        if not base_url:
            return base_url
        try:
            return base_url_normalised(base_url)
        except URLRefused as exc:
            raise forms.ValidationError(str(exc), code="base_url_refused") from None
