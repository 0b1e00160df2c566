"""One project at any size, with every kind of row a real project of that size has: its frames in
videos, their embedding and projection, a frozen gold set labelled twice over in Label Studio, a
fine-tuning run, detection and caption runs over every frame (each a job in shards), an evaluation
with its scored report, two reviews (the evaluation's, and one of two whole runs) and an export.

Shared by the page tests (the SQL a page makes must not grow with the project) and by
bench/pages_bench.py (every page and API timed at 100,000 frames). Rows are written in bulk, as
no pipeline could write them at this size here; what the pages read is built by the product's own
services wherever that is cheap (the review's frames, the evaluation's report, the run memberships).
"""

import io
import json
import random
from dataclasses import dataclass
from urllib.parse import urlencode

import numpy as np
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.db import connection
from django.utils import timezone

from apps.accounts.services import user_create
from apps.captioning.models import Caption, CaptionRun, Detection, DetectionRun
from apps.captioning.services import caption_run_health_refresh, run_answers_recount, run_frames_set
from apps.core.permissions import Role
from apps.curation.models import ClusteringRun, EmbeddingRun, GoldItem, GoldSet, ProjectionPoint
from apps.evaluation import report as report_builder
from apps.evaluation.models import CaptionScore, Comparison, ComparisonPipeline, EvalSet
from apps.evaluation.selectors import DEFAULT_PARAMS
from apps.evaluation.services import eval_set_frames_set
from apps.exports.models import Export
from apps.jobs.models import Job
from apps.labeling.models import GoldLabel, GoldResolution, LabelingProject, LabelingTask, LabelStudioAccount
from apps.media.models import Asset, Video
from apps.modelhub.models import ModelVersion
from apps.modelhub.services import model_versions_ensure
from apps.projects.models import Project
from apps.projects.services import character_create, membership_add, project_create
from apps.review.models import ReviewVote
from apps.review.services import review_create, review_create_from_comparison
from apps.training.models import TrainingEpoch, TrainingRun, TrainingStep

NAMES = ["Ellie", "Victor", "Luna", "Pip"]
BATCH = 5000
FRAMES_PER_VIDEO = 2000
GOLD_EVERY = 50  # a gold frame per 50 frames (one per cluster of the projection)
EVAL_EVERY = 10  # the evaluation scores a tenth of the frames
SHARD_FRAMES = 1000
MOODS, PLACES, GAZES = ["quiet", "busy", "dark", "sunny"], ["kitchen", "forest", "street"], ["up", "away", "ahead"]
FIELDS = ("scene", "background", "characters", "salient_objects")


@dataclass
class World:
    project: Project
    lead: User
    annotator: User
    reviewer: User
    frames: int
    asset_ids: list[int]
    ids: dict[str, int]  # the rows a page is about: "detection_run", "review", "gold_set", …

    def pages(self) -> list[tuple[str, str]]:
        """Every page and API a user reads (GET), named, at this world's rows."""
        p, i = self.project.id, self.ids
        asset = self.asset_ids[len(self.asset_ids) // 2]
        preview = urlencode(
            {"source": "run", "caption_run": i["caption_run"], "format": "jsonl", "template": "{scene} {characters}",
             "shard_size": 1000, "require_adherence": "on"}
        )  # fmt: skip
        return [
            ("home", "/"),
            ("projects", "/projects/"),
            ("project", f"/projects/{p}/"),
            ("pipeline", f"/projects/{p}/pipeline/"),
            ("audit log", f"/projects/{p}/audit/"),
            ("audit log: role changes", "/audit/accounts/"),
            ("new project", "/projects/new/"),
            ("project edit", f"/projects/{p}/edit/"),
            ("new character", f"/projects/{p}/characters/new/"),
            ("character edit", f"/projects/{p}/characters/{i['character']}/"),
            ("footage", f"/projects/{p}/footage/"),
            ("frames", f"/projects/{p}/assets/"),
            ("ingest", f"/projects/{p}/ingest/"),
            ("frame", f"/projects/{p}/assets/{asset}/"),
            ("frame's gold", f"/projects/{p}/assets/{asset}/gold/"),
            ("frame's record", f"/projects/{p}/assets/{asset}/record/"),
            ("curation", f"/projects/{p}/curation/"),
            ("projection", f"/projects/{p}/curation/clusterings/{i['clustering']}/"),
            ("download: projection points", f"/projects/{p}/curation/clusterings/{i['clustering']}/points/"),
            ("gold set", f"/projects/{p}/gold/{i['gold_set']}/"),
            ("labelling", f"/projects/{p}/labeling/"),
            ("labelling health", f"/projects/{p}/labeling/health/"),
            ("labelling project", f"/projects/{p}/labeling/{i['labeling_project']}/"),
            ("training", f"/projects/{p}/training/"),
            ("training run", f"/projects/{p}/training/{i['training_run']}/"),
            ("training curves", f"/projects/{p}/training/{i['training_run']}/curves/"),
            ("runs", f"/projects/{p}/runs/"),
            ("detection run", f"/projects/{p}/runs/detections/{i['detection_run']}/"),
            ("caption run", f"/projects/{p}/runs/captions/{i['caption_run']}/"),
            ("caption run: flagged", f"/projects/{p}/runs/captions/{i['caption_run']}/?show=flagged"),
            ("detection run: failed", f"/projects/{p}/runs/detections/{i['detection_run']}/?show=failed"),
            ("caption health", f"/projects/{p}/runs/captions/{i['caption_run']}/health/"),
            ("evaluation", f"/projects/{p}/evaluation/"),
            ("comparison", f"/projects/{p}/evaluation/{i['comparison']}/"),
            ("download: comparison report (JSON)", f"/projects/{p}/evaluation/{i['comparison']}/report.json"),
            ("download: comparison report (HTML)", f"/projects/{p}/evaluation/{i['comparison']}/report.html"),
            ("reviews", f"/projects/{p}/reviews/"),
            ("review", f"/projects/{p}/reviews/{i['review']}/"),
            ("review of whole runs", f"/projects/{p}/reviews/{i['runs_review']}/"),
            ("review results", f"/projects/{p}/reviews/{i['review']}/results/"),
            ("review flags", f"/projects/{p}/reviews/flags/"),
            ("exports", f"/projects/{p}/exports/"),
            ("export preview", f"/projects/{p}/exports/preview/?{preview}"),
            ("export", f"/projects/{p}/exports/{i['export']}/"),
            ("jobs", "/jobs/"),
            ("job", f"/jobs/{i['detection_job']}/"),
            ("job progress", f"/jobs/{i['detection_job']}/progress/"),
            ("project jobs", f"/jobs/project/{p}/"),
            ("API: projects", "/api/projects/"),
            ("API: project", f"/api/projects/{p}/"),
            ("API: characters", f"/api/projects/{p}/characters/"),
            ("API: character", f"/api/projects/{p}/characters/{i['character']}/"),
            ("API: frames", f"/api/projects/{p}/assets/"),
            ("API: frame", f"/api/projects/{p}/assets/{asset}/"),
            ("API: videos", f"/api/projects/{p}/videos/"),
            ("API: jobs", f"/api/projects/{p}/jobs/"),
            ("API: job", f"/api/jobs/{i['detection_job']}/"),
            ("API: reviews", f"/api/projects/{p}/reviews/"),
            ("API: review frame", f"/api/projects/{p}/reviews/{i['review']}/frame/"),
            ("API: review results", f"/api/projects/{p}/reviews/{i['review']}/results/"),
            ("API: exports", f"/api/projects/{p}/exports/"),
            ("API: export", f"/api/projects/{p}/exports/{i['export']}/"),
            ("API: me", "/api/me/"),
        ]


def _bulk(model, rows, batch: int = BATCH) -> None:
    for start in range(0, len(rows), batch):
        model.objects.bulk_create(rows[start : start + batch])


def _finished_job(project, kind: str, lead, **fields) -> Job:
    now = timezone.now()
    return Job.objects.create(
        project=project, kind=kind, status="succeeded", progress=1.0, started_at=now, finished_at=now,
        created_by=lead, **fields,
    )  # fmt: skip


def _sharded_job(project, kind: str, lead, run_field: str, run_id: int, frames: int) -> Job:
    """A run's job as a run over many workers leaves it: a parent and one finished shard per range."""
    job = _finished_job(project, kind, lead, queue="gpu", params={run_field: run_id})
    now = timezone.now()
    _bulk(
        Job,
        [
            Job(project=project, kind=f"{kind}_shard", status="succeeded", progress=1.0, queue="gpu", parent=job,
                params={run_field: run_id, "start": start, "stop": min(start + SHARD_FRAMES, frames)},
                started_at=now, finished_at=now, parent_progress_from=start / frames,
                parent_progress_to=min(start + SHARD_FRAMES, frames) / frames)
            for start in range(0, frames, SHARD_FRAMES)
        ],
    )  # fmt: skip
    return job


def _as_its_job_leaves_it(run) -> None:
    """What a run's job does once its answers are in: counts them, and sums up a caption run's health."""
    run_answers_recount(run=run)
    if isinstance(run, CaptionRun):
        caption_run_health_refresh(run=run, force=True)


def _caption_fields(rng: random.Random, names: list[str]) -> dict:
    return {
        "scene": f"A {rng.choice(MOODS)} moment in the {rng.choice(PLACES)}.",
        "background": rng.choice(["Tiled walls and a window.", "Tall pines in fog.", "Brick houses at dusk."]),
        "characters": [{"name": name, "description": f"{name} looks {rng.choice(GAZES)}."} for name in names],
        "salient_objects": rng.sample(["a kettle", "a lantern", "a red ball", "a bicycle", "a map"], 2),
    }  # fmt: skip


def _users(tag: str) -> tuple[User, User, User, User]:
    roles = {"lead": Role.LEAD, "annotator": Role.ANNOTATOR, "annotator2": Role.ANNOTATOR, "reviewer": Role.REVIEWER}
    return tuple(
        user_create(username=f"{name}-{tag}", password="scale-pass-1", role=role) for name, role in roles.items()
    )


def seed_world(frames: int, *, tag: str = "") -> World:
    """A project of `frames` frames (see the module's docstring); `tag` keeps two worlds' users apart."""
    rng = random.Random(frames)
    tag = tag or str(frames)
    lead, annotator, annotator2, reviewer = _users(tag)
    project = project_create(name=f"Scale world ({frames} frames)", created_by=lead)
    for user in (annotator, annotator2, reviewer):
        membership_add(project=project, username=user.username)
    characters = [
        character_create(project=project, name=name, description=f"{name}, a character of the scale world.")
        for name in NAMES
    ]
    model_versions_ensure(project=project)
    detector, captioner = (project.model_versions.get(role=role, is_default=True) for role in ("detector", "captioner"))

    videos = [
        Video.objects.create(project=project, original_name=f"episode-{n:03d}.mp4", sha256=f"{n:064d}",
                             file=f"scale/episode-{n}.mp4", width=1280, height=720, fps=24.0,
                             duration_seconds=FRAMES_PER_VIDEO, frame_count=FRAMES_PER_VIDEO)
        for n in range(max(1, frames // FRAMES_PER_VIDEO))
    ]  # fmt: skip
    _bulk(
        Asset,
        [
            Asset(project=project, kind="frame", sha256=f"{project.id:08d}{n:056d}", width=1280, height=720,
                  image=f"scale/{n}.jpg", thumbnail=f"scale/{n}.webp", video=videos[n % len(videos)],
                  timestamp_seconds=float(n // len(videos)))
            for n in range(frames)
        ],
    )  # fmt: skip
    asset_ids = list(Asset.objects.filter(project=project).order_by("id").values_list("id", flat=True))

    # Curation: the embedding, the projection (one cluster per 50 frames, a tenth noise), the gold set.
    buffer = io.BytesIO()
    np.savez(buffer, ids=np.array(asset_ids), vectors=np.zeros((len(asset_ids), 4), dtype=np.float16))
    embedding = EmbeddingRun.objects.create(
        project=project, model_key="clip-scale", model_name="ViT-B-32", vectors=ContentFile(buffer.getvalue(), "v.npz"),
        count=frames, dim=512, embedded=frames, job=_finished_job(project, "embed", lead),
    )  # fmt: skip
    clusters = max(1, frames // GOLD_EVERY)
    labels = [-1 if n % 10 == 9 else n % clusters for n in range(frames)]
    sizes: dict[str, int] = {}
    for label in labels:
        if label != -1:
            sizes[str(label)] = sizes.get(str(label), 0) + 1
    clustering = ClusteringRun.objects.create(
        project=project, embedding_run=embedding, params={"min_cluster_size": 5}, point_count=frames,
        n_clusters=clusters, noise_count=labels.count(-1), cluster_sizes=sizes,
        job=_finished_job(project, "cluster", lead),
    )  # fmt: skip
    _bulk(
        ProjectionPoint,
        [
            ProjectionPoint(clustering=clustering, asset_id=asset_id, cluster=label,
                            x=(label % 97) + rng.gauss(0, 0.3), y=(label // 97) + rng.gauss(0, 0.3))
            for asset_id, label in zip(asset_ids, labels, strict=True)
        ],
    )  # fmt: skip
    gold_ids = [asset_ids[n] for n in range(0, frames, GOLD_EVERY)]
    gold_set = GoldSet.objects.create(
        project=project, version=1, clustering=clustering, status="frozen", frozen_at=timezone.now(), created_by=lead
    )
    _bulk(
        GoldItem,
        [GoldItem(gold_set=gold_set, asset_id=a, cluster=n, source="centroid") for n, a in enumerate(gold_ids)],
    )

    # Detection and captioning over every frame, each run a job in shards.
    detection_run = DetectionRun.objects.create(project=project, model_version=detector, prompt_version="scale")
    truth = {asset_id: sorted(rng.sample(NAMES, rng.randint(0, 2))) for asset_id in asset_ids}
    _bulk(
        Detection,
        [Detection(run=detection_run, asset_id=a, names=truth[a], raw_text=str(truth[a]),
                   model_version_label=detector.name) for a in asset_ids],
    )  # fmt: skip
    caption_runs = {}
    for pipeline in ("no_detection", "detection"):
        run = CaptionRun.objects.create(
            project=project, model_version=captioner, pipeline=pipeline, prompt_version="scale",
            detection_run=detection_run if pipeline == "detection" else None,
        )  # fmt: skip
        given = (lambda a: truth[a]) if pipeline == "detection" else (lambda a: NAMES)
        _bulk(
            Caption,
            [
                Caption(run=run, asset_id=a, fields=fields, raw_text=json.dumps(fields) if n % 100 != 7 else "{oops",
                        characters_given=given(a), ok=n % 100 != 7, flags=[] if n % 100 != 7 else ["repaired"],
                        model_version_label=captioner.name, tokens=60 + n % 40)
                for n, a in enumerate(asset_ids)
                for fields in [_caption_fields(rng, truth[a] if pipeline == "detection" else NAMES[:2])]
            ],
        )  # fmt: skip
        caption_runs[pipeline] = run
    for run in (detection_run, *caption_runs.values()):
        run_frames_set(run=run, asset_ids=asset_ids)
        _as_its_job_leaves_it(run)
    detection_job = _sharded_job(project, "detect", lead, "detection_run_id", detection_run.id, frames)
    DetectionRun.objects.filter(id=detection_run.id).update(job=detection_job)
    for run in caption_runs.values():
        CaptionRun.objects.filter(id=run.id).update(
            job=_sharded_job(project, "caption", lead, "caption_run_id", run.id, frames)
        )

    # Labelling: every gold frame labelled by two annotators, who disagree on one frame in ten.
    labeling_project = LabelingProject.objects.create(
        project=project, gold_set=gold_set, detection_run=detection_run, status="ready", ls_project_id=project.id,
        webhook_secret="scale", created_by=lead, last_synced_at=timezone.now(),
    )  # fmt: skip
    _bulk(
        LabelingTask,
        [LabelingTask(labeling_project=labeling_project, asset_id=a, ls_task_id=n + 1, is_control=n % 10 == 0,
                      predicted_names=truth[a]) for n, a in enumerate(gold_ids)],
    )  # fmt: skip
    for user in (annotator, annotator2):  # the accounts the app made: only their answers count
        LabelStudioAccount.objects.create(user=user, ls_user_id=user.id, ls_email=f"{user.username}@example.com")
    tasks = list(LabelingTask.objects.filter(labeling_project=labeling_project).order_by("ls_task_id"))
    now = timezone.now()
    _bulk(
        GoldLabel,
        [
            GoldLabel(labeling_project=labeling_project, task=task, asset_id=task.asset_id, annotator=user,
                      names=truth[task.asset_id] if (user == annotator or n % 10) else ["Pip"],
                      ls_annotation_id=2 * n + k + 1, ls_updated_at=now, ls_user_id=user.id,
                      ls_user_email=f"{user.username}@example.com")
            for n, task in enumerate(tasks)
            for k, user in enumerate((annotator, annotator2))
        ],
    )  # fmt: skip
    _bulk(
        GoldResolution,
        [GoldResolution(labeling_project=labeling_project, asset_id=t.asset_id, names=truth[t.asset_id],
                        resolved_by=lead)
         for n, t in enumerate(tasks) if n % 20 == 0],
    )  # fmt: skip

    # Fine-tuning on the gold labels: 80/20, five epochs.
    gold_labels = {str(a): truth[a] for a in gold_ids}
    cut = len(gold_ids) * 4 // 5
    training_run = TrainingRun.objects.create(
        project=project, base_version=detector, labeling_project=labeling_project, gold_set_version=1,
        params={"epochs": 5, "learning_rate": 1e-4}, train_labels=dict(list(gold_labels.items())[:cut]),
        validation_labels=dict(list(gold_labels.items())[cut:]), created_by=lead,
        job=_finished_job(project, "train_detector", lead, queue="gpu"),
    )  # fmt: skip
    steps = max(5, cut // 4)
    _bulk(
        TrainingStep,
        [TrainingStep(run=training_run, step=s, epoch=s * 5 // steps + 1, loss=2.0 / (s + 1), learning_rate=1e-4,
                      seconds=0.5) for s in range(steps)],
    )  # fmt: skip
    validation = {a: truth[int(a)] for a in training_run.validation_labels}
    _bulk(
        TrainingEpoch,
        [TrainingEpoch(run=training_run, epoch=e, train_loss=1.0 / (e + 1), val_loss=1.2 / (e + 1),
                       precision=0.5 + e / 20, recall=0.5 + e / 25, sample_f1=0.5 + e / 22, mistakes=10.0 / (e + 1),
                       predictions=validation)
         for e in range(0, 6)],
    )  # fmt: skip
    training_run.result_version = ModelVersion.objects.create(
        project=project, role="detector", name="detector + LoRA (scale)", model=detector.model, adapter="scale/adapter"
    )
    training_run.save(update_fields=["result_version"])

    # The evaluation: a tenth of the frames (none of them gold), two pipelines, every caption scored.
    gold = set(gold_ids)
    eval_ids = [a for n, a in enumerate(asset_ids) if n % EVAL_EVERY == 3 and a not in gold]
    eval_set = EvalSet.objects.create(project=project, name="Scale eval set", requested=len(eval_ids))
    eval_set_frames_set(eval_set=eval_set, asset_ids=eval_ids)
    comparison = Comparison.objects.create(
        project=project, eval_set=eval_set, captioner=captioner, profile="demo", created_by=lead,
        params={**DEFAULT_PARAMS, "bootstrap_resamples": 200}, test_labels=dict(list(gold_labels.items())[cut:]),
        test_split_source="scale", job=_finished_job(project, "evaluate", lead),
    )  # fmt: skip
    for position, (label, pipeline) in enumerate(
        (("no detection", "no_detection"), ("detector → captioner", "detection"))
    ):
        eval_run = CaptionRun.objects.create(
            project=project, model_version=captioner, pipeline=pipeline, prompt_version="scale",
            job=_finished_job(project, "caption", lead, queue="gpu"),
        )  # fmt: skip
        source = {c.asset_id: c for c in Caption.objects.filter(run=caption_runs[pipeline], asset_id__in=eval_ids)}
        _bulk(
            Caption,
            [Caption(run=eval_run, asset_id=a, fields=source[a].fields, raw_text=source[a].raw_text,
                     characters_given=source[a].characters_given,
                     ok=source[a].ok, model_version_label=captioner.name, tokens=source[a].tokens) for a in eval_ids],
        )  # fmt: skip
        run_frames_set(run=eval_run, asset_ids=eval_ids)
        pipeline_row = ComparisonPipeline.objects.create(
            comparison=comparison, position=position, label=label, caption_run=eval_run,
            detector=detector if pipeline == "detection" else None,
        )  # fmt: skip
        _bulk(
            CaptionScore,
            [
                CaptionScore(pipeline=pipeline_row, asset_id=a, tokens=70, adheres=n % 50 != 0,
                             clip_score=0.2 + rng.random() / 5,
                             health={"parsed": True, "repairs": [], "missing": [], "empty": []}, judge_status="ok",
                             judge_scores={f: rng.randint(1, 5) for f in FIELDS}, judge_overall=rng.uniform(1, 5),
                             characters_reference="truth", characters_precision=rng.random(),
                             characters_recall=rng.random(), characters_f1=rng.random(),
                             characters_mistakes=rng.randint(0, 2))
                for n, a in enumerate(eval_ids)
            ],
        )  # fmt: skip
    comparison.report = report_builder.build(
        comparison, {"token_unit": "tokens", "clip_model": "ViT-B-32", "judge": "judge"}
    )
    comparison.save(update_fields=["report"])

    # Reviews: the evaluation's, voted on for a while, and one of the two whole runs.
    review = review_create_from_comparison(comparison=comparison, created_by=lead)
    _bulk(
        ReviewVote,
        [ReviewVote(review=review, frame=frame, reviewer=reviewer, candidate_shown_as="AB"[frame.position % 2],
                    choices={"overall": "candidate", "scene": "same"})
         for frame in review.frames.order_by("position")[: max(1, len(eval_ids) // 5)]],
    )  # fmt: skip
    runs_review = review_create(
        baseline=caption_runs["no_detection"], candidate=caption_runs["detection"], created_by=lead,
        labels=("no detection", "detector → captioner"),
    )  # fmt: skip
    export = Export.objects.create(
        project=project, source="run", caption_run=caption_runs["detection"], format="jsonl", template="{scene}",
        frames=frames, result={"frames": frames, "files": 2}, job=_finished_job(project, "dataset_export", lead),
        created_by=lead,
    )  # fmt: skip
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:  # the statistics autovacuum would gather on a live database
            cursor.execute("ANALYZE")
    return World(
        project=project, lead=lead, annotator=annotator, reviewer=reviewer, frames=frames, asset_ids=asset_ids,
        ids={
            "character": characters[0].id, "clustering": clustering.id, "gold_set": gold_set.id,
            "labeling_project": labeling_project.id, "training_run": training_run.id,
            "detection_run": detection_run.id, "caption_run": caption_runs["detection"].id,
            "comparison": comparison.id, "review": review.id, "runs_review": runs_review.id, "export": export.id,
            "detection_job": detection_job.id,
        },
    )  # fmt: skip
