"""Make Label Studio accounts for a project's labelling members (sign-up is off; the app makes them)."""

import json
from pathlib import Path

from django.core.management.base import CommandError

from apps.jobs.commands import JobCommand
from apps.labeling.client import LabelStudioError
from apps.labeling.services import labeling_member_accounts_ensure


class Command(JobCommand):
    help = (
        "Make a Label Studio account, through its API with the admin token, for every member of the "
        "project with a labelling role (annotator or lead) who has none, and record it: only answers "
        "from these accounts count. Initial passwords are generated and printed once (or taken from "
        "--passwords)."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--passwords", default="", help="JSON file username → initial password (the demo's)")

    def handle(self, *args, project, user, passwords, **options):
        project_obj = self.project(project)
        known = json.loads(Path(passwords).read_text()) if passwords else {}
        try:
            outcomes = labeling_member_accounts_ensure(project=project_obj, created_by=self.user(user), passwords=known)
        except LabelStudioError as exc:
            raise CommandError(str(exc)) from exc
        for outcome in outcomes:
            line = f"  {outcome.user.username:<12} {outcome.email or '—':<30} {outcome.status:<9} {outcome.detail}"
            if outcome.password:
                line += f"   initial password: {outcome.password}"
            self.stdout.write(line)
        if any(outcome.status in ("refused", "failed") for outcome in outcomes):
            raise CommandError("Some accounts were not made (see above).")
        self.stdout.write(self.style.SUCCESS(f"{len(outcomes)} labelling member(s) have a Label Studio account."))
