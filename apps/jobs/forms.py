from django import forms

from apps.jobs.kinds import JOB_KINDS
from apps.jobs.models import JobStatus
from apps.jobs.selectors import JOB_ORDERINGS

ORDERING_LABELS = {"newest": "newest first", "oldest": "oldest first", "status": "by status", "kind": "by kind"}


class JobFilterForm(forms.Form):
    """The dashboard's filters, read from the URL (so a filtered view can be bookmarked and
    shared). A value that is not one of the choices is dropped, never an error."""

    project = forms.TypedChoiceField(coerce=int, required=False, empty_value=None)
    kind = forms.ChoiceField(required=False)
    status = forms.ChoiceField(required=False, choices=[("", "any"), *JobStatus.choices])
    ordering = forms.ChoiceField(required=False, choices=[(key, ORDERING_LABELS[key]) for key in JOB_ORDERINGS])
    housekeeping = forms.BooleanField(required=False, label="periodic syncs too")

    def __init__(self, *args, projects=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].choices = [("", "any"), *((project.id, project.name) for project in projects)]
        kinds = sorted((kind for kind in JOB_KINDS.values() if not kind.shard), key=lambda kind: kind.label)
        self.fields["kind"].choices = [("", "any"), *((kind.name, kind.label) for kind in kinds)]

    def filters(self) -> dict:
        """The valid filters given, each left out when not given or not valid."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        return {key: data[key] for key in ("project", "kind", "status", "housekeeping") if data.get(key)}
