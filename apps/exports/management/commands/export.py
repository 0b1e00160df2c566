from pathlib import Path

from django.core.management.base import CommandError

from apps.captioning.models import CaptionRun
from apps.exports import selectors
from apps.exports.models import ExportFormat, ExportSource
from apps.exports.services import export_start
from apps.jobs.commands import JobCommand


class Command(JobCommand):
    help = (
        "Export the captioned dataset into a folder (and an archive the Export page offers): one caption "
        "run (--run N) or the best caption per frame (--best, the default), reviewers' corrections applied."
    )
    reusable = True

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--format", required=True, choices=ExportFormat.values)
        parser.add_argument(
            "--out", default="", help="also write the files into this new or empty folder (default: the archive only)"
        )
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--run", type=int, default=None, help="caption run id")
        source.add_argument("--best", action="store_true", help="the best caption per frame across runs (default)")
        parser.add_argument(
            "--template", default=None, help="dense caption template, e.g. '{characters} in {background}.'"
        )
        parser.add_argument("--shard-size", type=int, default=1000, help="WebDataset: samples per shard")
        parser.add_argument("--min-judge-score", type=float, default=None, help="judge overall score at least (1-10)")
        parser.add_argument("--require-adherence", action="store_true", help="only captions that fit the schema")
        parser.add_argument("--exclude-flagged", action="store_true", help="leave out captions with open flags")
        parser.add_argument(
            "--only-reviewed", action="store_true", help="only captions reviewers voted on or corrected"
        )
        parser.add_argument("--only-with-characters", action="store_true", help="only frames with characters")

    def handle(self, *args, project, user, reuse, **options):
        from workers.exports.dense import DEFAULT_TEMPLATE

        project_obj = self.project(project)
        run = None
        if options["run"] is not None:
            run = CaptionRun.objects.filter(project=project_obj, id=options["run"]).first()
            if run is None:
                raise CommandError(f"No caption run #{options['run']} in {project_obj.name}.")
        source = ExportSource.RUN if run else ExportSource.BEST
        out_dir = str(Path(options["out"]).expanduser().resolve()) if options["out"] else ""
        template = options["template"] if options["template"] is not None else DEFAULT_TEMPLATE
        try:
            filters = selectors.ExportFilters.from_mapping(
                {
                    name: options[name]
                    for name in (
                        "min_judge_score",
                        "require_adherence",
                        "exclude_flagged",
                        "only_reviewed",
                        "only_with_characters",
                    )
                }
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        preview = selectors.export_preview(project=project_obj, source=source, filters=filters, caption_run=run)
        self.stdout.write(
            f"{preview.kept} of {preview.exportable} captioned frames kept"
            + "".join(f"; {selectors.ExportFilters.LABELS[name]}: {count}" for name, count in preview.kept_by.items())
        )
        if reuse:
            earlier = selectors.export_done_before(
                project=project_obj,
                inputs_key=preview.inputs_key,
                format=options["format"],
                template=template,
                shard_size=options["shard_size"],
                out_dir=out_dir,
            )
            if earlier is not None:
                self.stdout.write(f"Reusing {earlier}: the same records, exported before.")
                self._done(earlier, project_obj)
                return

        def start():
            return export_start(
                project=project_obj,
                created_by=self.user(user),
                format=options["format"],
                source=source,
                caption_run=run,
                template=template,
                shard_size=options["shard_size"],
                filters=filters.to_dict(),
                out_dir=out_dir,
                inputs_key=preview.inputs_key,
                enqueue=False,
            ).job

        result = self.run(start)
        self._done(selectors.export_get(project=project_obj, export_id=result["export_id"]), project_obj)

    def _done(self, export, project) -> None:
        lint = export.lint or {}
        self.stdout.write(
            f"Lint: {lint.get('problems', 0)} finding(s) over {lint.get('frames', export.frames)} captions"
            f" ({lint.get('too_long', {}).get('count', 0)} too long,"
            f" {sum(f['count'] for f in lint.get('empty_fields', {}).values())} empty fields,"
            f" {len(lint.get('identity_phrases', []))} identity phrases)"
        )
        try:
            archive = export.archive.path  # local media; object storage has no path
        except NotImplementedError:
            archive = export.archive.name
        folder = f" in {export.out_dir}" if export.out_dir else ""
        self.stdout.write(
            self.style.SUCCESS(
                f"{export}: {export.frames} frames{folder}; archive {archive}; "
                f"the page: /projects/{project.id}/exports/{export.id}/"
            )
        )
