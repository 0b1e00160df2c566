from django.core.management.base import BaseCommand

from apps.jobs.services import jobs_sweep


class Command(BaseCommand):
    help = "Re-queue or fail jobs whose worker stopped sending heartbeats; re-send lost queued jobs."

    def add_arguments(self, parser):
        parser.add_argument("--stale-after", type=float, default=None, help="seconds without heartbeat")
        parser.add_argument("--reenqueue-after", type=float, default=None, help="seconds queued before resending")

    def handle(self, *args, stale_after, reenqueue_after, **options):
        outcome = jobs_sweep(stale_after=stale_after, reenqueue_after=reenqueue_after)
        for key, ids in outcome.items():
            self.stdout.write(f"{key}: {len(ids)} {ids if ids else ''}".rstrip())
