"""Stand in for annotators: answer the Label Studio tasks with the ground truth, as a browser would."""

import json
import random
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.core.management.base import CommandError

from apps.jobs.commands import JobCommand
from apps.labeling.browser import LabelStudioBrowser
from apps.labeling.client import LabelStudioError
from apps.labeling.label_config import choices_result
from apps.labeling.models import LabelingProject
from apps.labeling.selectors import labelling_members
from apps.labeling.services import labelstudio_account_ensure
from apps.media.selectors import ground_truth_names


class Command(JobCommand):
    help = (
        "Log in to Label Studio as each named app user and answer the gold-set tasks with the demo "
        "world's ground truth, through the same API the labelling page uses. Each user's Label Studio "
        "account is made by the app first (through the API with the admin token, with the given "
        "password as its initial password; sign-up is off) unless it has one. Optional mistakes and "
        "overlap make agreement non-trivial."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--annotator", action="append", required=True, help="USERNAME[:PASSWORD] (repeatable)")
        parser.add_argument("--passwords", default="", help="JSON file username → password (the demo's credentials)")
        parser.add_argument("--overlap", type=float, default=0.0, help="share of frames every annotator answers")
        parser.add_argument("--mistake-rate", type=float, default=0.0, help="chance to flip one character per answer")
        parser.add_argument("--leave", type=int, default=0, help="leave this many frames unanswered (for a person)")
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, project, annotator, passwords, overlap, mistake_rate, leave, seed, **options):
        project_obj = self.project(project)
        labeling_project = LabelingProject.objects.filter(project=project_obj, status="ready").order_by("-id").first()
        if labeling_project is None:
            raise CommandError("No labelling project is ready: run `manage.py label_gold` first.")
        known = json.loads(Path(passwords).read_text()) if passwords else {}
        accounts = []
        for entry in annotator:
            username, _, password = entry.partition(":")
            password = password or known.get(username, "")
            user = User.objects.filter(username=username).first()
            if user is None or not user.email or not password:
                raise CommandError(f"{username!r} needs an app account with an e-mail, and a password after ':'.")
            if user not in labelling_members(project_obj):
                self.stderr.write(f"  {username} is not a labelling member of the project: answers will be ignored")
            try:
                outcome = labelstudio_account_ensure(user=user, password=password)
            except LabelStudioError as exc:
                raise CommandError(f"Could not make {username}'s Label Studio account: {exc}") from exc
            if outcome.status in ("refused", "failed"):
                raise CommandError(f"{username}'s Label Studio account: {outcome.detail}")
            self.stdout.write(f"  {username}: Label Studio account {outcome.status} ({outcome.detail})")
            accounts.append((user, password))
        rng = random.Random(seed)
        tasks = list(labeling_project.tasks.order_by("id"))
        truth = ground_truth_names(project=project_obj, asset_ids=[task.asset_id for task in tasks])
        if not truth:
            raise CommandError("This project has no ground truth to answer with (the demo world has).")
        roster = sorted(project_obj.characters.values_list("name", flat=True))
        # Leave a person the frames that show a pre-annotation with names ticked, if any.
        prefilled = [t for t in tasks if not t.is_control and t.predicted_names]
        left = {t.id for t in (prefilled + [t for t in tasks if t not in prefilled])[:leave]}
        answered = [task for task in tasks if task.id not in left]
        shared = {task.id for task in answered if rng.random() < overlap}
        answers = 0
        for index, (user, password) in enumerate(accounts):
            with LabelStudioBrowser(settings.LABEL_STUDIO_PUBLIC_URL) as browser:
                me = browser.log_in(user.email, password)
                mine = [t for i, t in enumerate(answered) if t.id in shared or i % len(accounts) == index]
                submitted = 0
                for task in mine:
                    names = set(truth.get(task.asset_id, []))
                    if rng.random() < mistake_rate:  # drawn for every task: a re-run makes the same choices
                        names ^= {rng.choice(roster)}  # tick a missing character or untick a present one
                    # A person does not answer a task twice: a second run leaves what the first did.
                    if not browser.has_annotated(task.ls_task_id, me["id"]):
                        browser.annotate(task.ls_task_id, choices_result(sorted(names)))
                        submitted += 1
            answers += submitted
            already = f", {len(mine) - submitted} answered before" if submitted < len(mine) else ""
            self.stdout.write(f"  {user.username} ({user.email}): {submitted} answers{already}")
        self.stdout.write(
            self.style.SUCCESS(
                f"{answers} answers submitted to Label Studio project #{labeling_project.ls_project_id}."
            )
        )
