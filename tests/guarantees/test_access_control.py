"""QUALITY.md, access control (items 19–24). One test (or a few, sharing the prefix) per item:
`pytest -k test_22_`.

19 is the role × endpoint × own/other-project matrix for every page and API endpoint. Rules the
product promises (apps/core/permissions.py):
- anonymous: pages redirect to the login page, the API answers 401;
- a project the user is not a member of does not exist for them: 404, whatever their role;
- a member whose role may not do the action: 403; otherwise the endpoint's success status.
"""

import json
import re
from dataclasses import dataclass, field

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from PIL import Image
from rest_framework.test import APIClient

from apps.captioning.models import Caption
from apps.captioning.services import caption_run_start, detection_run_start
from apps.core.permissions import Role
from apps.curation import services as curation_services
from apps.curation.vectors import vectors_to_file
from apps.evaluation.models import Comparison, EvalSet
from apps.exports.models import Export
from apps.labeling.models import GoldLabel, LabelingProject, LabelingTask, PendingAnnotation
from apps.media.models import AssetKind
from apps.media.services import asset_add
from apps.modelhub.models import ModelVersion
from apps.modelhub.services import model_versions_ensure
from apps.projects.models import ReferenceImage
from apps.projects.services import reference_image_add
from apps.review.services import review_create
from apps.training.models import TrainingRun
from tests.apps.labeling.world import labeling_world
from tests.factories import CharacterFactory, JobFactory, MembershipFactory, ProjectFactory, UserFactory, png_bytes
from tests.test_deploy_check import DOCUMENTED_PRODUCTION_ENV, _check
from workers.media.assets import prepare_asset

EVERYONE = {Role.LEAD, Role.ANNOTATOR, Role.REVIEWER}
CLUSTER_FORM = {"n_neighbors": 5, "min_dist": 0.1, "metric": "cosine", "seed": 1, "min_cluster_size": 3}
MODEL_FORM = {
    "role": "detector",
    "name": "served",
    "backend": "openai",
    "model": "m",
    "base_url": "http://vllm:8000/v1",
}
SAMPLE_FORM = {"strategy": "centroid", "seed": 0, "noise_picks": 0}
LEADS = {Role.LEAD}
REVIEWERS = {Role.LEAD, Role.REVIEWER}
VOTE = {"choice_overall": "same", "choice_scene": "A"}
# A report as the evaluation job stores it, reduced to one detector with no frames.
MINIMAL_REPORT = {
    "meta": {
        "profile": "tiny",
        "pipelines": ["no detection"],
        "scores": [],
        "eval_frames": 0,
        "test_frames": 0,
        "test_split": "",
    },
    "table1": [
        {
            "detector": "d",
            "unparseable": 0,
            "summary": {"n": 0, "precision": None, "recall": None, "f1": None, "mistakes": None},
            "rows": [],
            "characters": [],
        }
    ],
    "table2": [],
    "table3": [],
    "health": {},
    "examples": [],
}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # formatted with {project}, {character}, {reference}, {job}
    allowed: set
    success: int
    api: bool = False
    project_scoped: bool = True
    data: dict = field(default_factory=dict)
    upload: str | None = None  # the multipart field that carries a PNG

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


ENDPOINTS = [
    # pages
    Endpoint("GET", "/projects/", EVERYONE, 200, project_scoped=False),
    Endpoint("GET", "/projects/new/", LEADS, 200, project_scoped=False),
    Endpoint("POST", "/projects/new/", LEADS, 302, project_scoped=False, data={"name": "Made by matrix"}),
    Endpoint("GET", "/projects/{project}/", EVERYONE, 200),
    Endpoint("GET", "/projects/{project}/edit/", LEADS, 200),
    Endpoint("POST", "/projects/{project}/edit/", LEADS, 302, data={"name": "Renamed", "description": ""}),
    Endpoint("POST", "/projects/{project}/members/add/", LEADS, 302, data={"username": "outsider"}),
    Endpoint("GET", "/projects/{project}/characters/new/", LEADS, 200),
    Endpoint("POST", "/projects/{project}/characters/new/", LEADS, 302, data={"name": "Newcomer"}),
    Endpoint("GET", "/projects/{project}/characters/{character}/", LEADS, 200),
    Endpoint("POST", "/projects/{project}/characters/{character}/", LEADS, 302, data={"name": "Renamed hero"}),
    Endpoint("POST", "/projects/{project}/characters/{character}/delete/", LEADS, 302),
    Endpoint("POST", "/projects/{project}/characters/{character}/references/", LEADS, 302, upload="images"),
    Endpoint("POST", "/projects/{project}/references/{reference}/delete/", LEADS, 302),
    Endpoint("GET", "/projects/references/{reference}/file/", EVERYONE, 200),
    Endpoint("GET", "/projects/{project}/assets/", EVERYONE, 200),
    Endpoint("GET", "/projects/{project}/assets/{asset}/", EVERYONE, 200),
    Endpoint("GET", "/projects/{project}/assets/{asset}/gold/", EVERYONE, 200),
    Endpoint("GET", "/projects/{project}/assets/{asset}/record/", EVERYONE, 200),
    Endpoint("GET", "/projects/{project}/ingest/", LEADS, 200),
    Endpoint("GET", "/projects/{project}/footage/", EVERYONE, 200),
    Endpoint("GET", "/projects/{project}/pipeline/", EVERYONE, 200),
    Endpoint("GET", "/projects/{project}/audit/", LEADS, 200),
    Endpoint("GET", "/audit/accounts/", LEADS, 200, project_scoped=False),
    Endpoint("POST", "/projects/{project}/ingest/", LEADS, 302, upload="files"),
    Endpoint("GET", "/media/assets/{asset}/image/", EVERYONE, 200),
    Endpoint("GET", "/media/assets/{asset}/thumb/", EVERYONE, 200),
    Endpoint("GET", "/projects/{project}/curation/", EVERYONE, 200),
    Endpoint("POST", "/projects/{project}/curation/embed/", LEADS, 302),
    Endpoint("POST", "/projects/{project}/curation/cluster/", LEADS, 302, data=CLUSTER_FORM),
    Endpoint("GET", "/projects/{project}/curation/clusterings/{clustering}/", EVERYONE, 200),
    Endpoint("GET", "/projects/{project}/curation/clusterings/{clustering}/points/", EVERYONE, 200),
    Endpoint("POST", "/projects/{project}/curation/clusterings/{clustering}/sample/", LEADS, 302, data=SAMPLE_FORM),
    Endpoint("GET", "/projects/{project}/gold/{gold_set}/", EVERYONE, 200),
    Endpoint("POST", "/projects/{project}/gold/{gold_set}/edit/", LEADS, 302, data={"action": "freeze"}),
    Endpoint("GET", "/projects/{project}/runs/", EVERYONE, 200),
    Endpoint(
        "POST",
        "/projects/{project}/runs/detect/",
        LEADS,
        302,
        data={"detector": "{detector}", "gold_set": "{gold_set}"},
    ),
    Endpoint(
        "POST",
        "/projects/{project}/runs/caption/",
        LEADS,
        302,
        data={"captioner": "{captioner}", "pipeline": "detection", "detection_run": "{detection_run}"},
    ),
    Endpoint("GET", "/projects/{project}/runs/detections/{detection_run}/", EVERYONE, 200),
    Endpoint("POST", "/projects/{project}/models/add/", LEADS, 302, data=MODEL_FORM),
    Endpoint("POST", "/projects/{project}/models/{captioner}/default/", LEADS, 302),
    Endpoint("GET", "/projects/{project}/runs/captions/{caption_run}/", EVERYONE, 200),
    Endpoint("GET", "/projects/{project}/labeling/", EVERYONE, 200),
    Endpoint("GET", "/projects/{project}/labeling/health/", EVERYONE, 200),
    Endpoint(
        "POST",
        "/projects/{project}/labeling/start/",
        LEADS,
        302,
        data={"gold_set": "{frozen_gold_set}", "control_fraction": "0.2"},
    ),
    Endpoint("POST", "/projects/{project}/labeling/accounts/", LEADS, 302),  # no Label Studio here: back to the page
    Endpoint("GET", "/projects/{project}/labeling/{labeling}/", EVERYONE, 200),
    Endpoint("POST", "/projects/{project}/labeling/{labeling}/sync/", LEADS, 302),
    Endpoint("POST", "/projects/{project}/labeling/{labeling}/resolve/", LEADS, 302, data={"asset_id": "{asset}"}),
    Endpoint("GET", "/projects/{project}/training/", EVERYONE, 200),
    Endpoint(
        "POST",
        "/projects/{project}/training/launch/",
        LEADS,
        302,
        data={
            "base_version": "{detector}",
            "labeling_project": "{labeling}",
            "epochs": "1",
            "learning_rate": "0.001",
            "rank": "4",
            "alpha": "8",
            "dropout": "0.0",
            "batch_size": "2",
            "grad_accumulation": "1",
            "seed": "0",
        },
    ),  # fmt: skip
    Endpoint("GET", "/projects/{project}/training/{training_run}/", EVERYONE, 200),
    Endpoint("GET", "/projects/{project}/training/{training_run}/curves/", EVERYONE, 200),
    Endpoint("GET", "/projects/{project}/runs/captions/{caption_run}/health/", EVERYONE, 200),
    Endpoint("GET", "/projects/{project}/evaluation/", EVERYONE, 200),
    Endpoint("POST", "/projects/{project}/evaluation/eval-sets/", LEADS, 302, data={"size": "5", "seed": "0"}),
    Endpoint(
        "POST",
        "/projects/{project}/evaluation/start/",
        LEADS,
        302,
        data={"eval_set": "{eval_set}", "captioner": "{captioner}", "detectors": "{detector}"},
    ),
    Endpoint("GET", "/projects/{project}/evaluation/{comparison}/", EVERYONE, 200),
    Endpoint("GET", "/projects/{project}/evaluation/{comparison}/report.json", EVERYONE, 200),
    Endpoint("GET", "/projects/{project}/evaluation/{comparison}/report.csv", EVERYONE, 200),
    Endpoint("GET", "/projects/{project}/evaluation/{comparison}/report.html", EVERYONE, 200),
    Endpoint("GET", "/projects/{project}/evaluation/{comparison}/frames/?detector=d", EVERYONE, 200),
    Endpoint("GET", "/projects/{project}/reviews/", EVERYONE, 200),
    Endpoint(
        "POST",
        "/projects/{project}/reviews/new/",
        LEADS,
        302,
        data={"baseline": "{caption_run2}", "candidate": "{caption_run}"},
    ),  # fmt: skip
    Endpoint("GET", "/projects/{project}/reviews/flags/", LEADS, 200),
    Endpoint("POST", "/projects/{project}/reviews/flags/{caption}/resolve/", LEADS, 302),
    Endpoint("GET", "/projects/{project}/reviews/{review}/", REVIEWERS, 200),
    Endpoint("GET", "/projects/{project}/reviews/{review}/results/", EVERYONE, 200),
    Endpoint("POST", "/projects/{project}/reviews/{review}/pairwise/", LEADS, 302, data={"judge": "{detector}"}),
    Endpoint("POST", "/projects/{project}/reviews/{review}/frames/{position}/vote/", REVIEWERS, 302, data=VOTE),
    Endpoint(
        "POST",
        "/projects/{project}/reviews/{review}/frames/{position}/correct/",
        REVIEWERS,
        302,
        data={"side": "A", "field": "scene", "value": "Corrected in the matrix."},
    ),  # fmt: skip
    Endpoint("GET", "/projects/{project}/exports/", LEADS, 200),
    Endpoint("GET", "/projects/{project}/exports/preview/?source=best&format=hf&template=%7Bscene%7D", LEADS, 200),
    Endpoint(
        "POST",
        "/projects/{project}/exports/new/",
        LEADS,
        302,
        data={"source": "best", "format": "jsonl", "template": "{{scene}}", "shard_size": 10},
    ),  # fmt: skip
    Endpoint("GET", "/projects/{project}/exports/{export}/", LEADS, 200),
    Endpoint("GET", "/projects/{project}/exports/{export}/download/", LEADS, 200),
    Endpoint("GET", "/jobs/", EVERYONE, 200, project_scoped=False),
    Endpoint("GET", "/jobs/{job}/", EVERYONE, 200),
    Endpoint("GET", "/jobs/{job}/progress/", EVERYONE, 200),
    Endpoint("POST", "/jobs/{job}/cancel/", LEADS, 302),
    Endpoint("POST", "/jobs/launch/{project}/", LEADS, 302, data={"kind": "smoke", "steps": "2"}),
    Endpoint("GET", "/jobs/project/{project}/", EVERYONE, 200),
    # API
    Endpoint("GET", "/api/me/", EVERYONE, 200, api=True, project_scoped=False),
    Endpoint("GET", "/api/projects/", EVERYONE, 200, api=True, project_scoped=False),
    Endpoint("POST", "/api/projects/", LEADS, 201, api=True, project_scoped=False, data={"name": "API project"}),
    Endpoint("GET", "/api/projects/{project}/", EVERYONE, 200, api=True),
    Endpoint("PATCH", "/api/projects/{project}/", LEADS, 200, api=True, data={"description": "new"}),
    Endpoint("GET", "/api/projects/{project}/characters/", EVERYONE, 200, api=True),
    Endpoint("POST", "/api/projects/{project}/characters/", LEADS, 201, api=True, data={"name": "Api hero"}),
    Endpoint("GET", "/api/projects/{project}/characters/{character}/", EVERYONE, 200, api=True),
    Endpoint(
        "PATCH", "/api/projects/{project}/characters/{character}/", LEADS, 200, api=True, data={"description": "x"}
    ),
    Endpoint("DELETE", "/api/projects/{project}/characters/{character}/", LEADS, 204, api=True),
    Endpoint(
        "POST", "/api/projects/{project}/characters/{character}/references/", LEADS, 201, api=True, upload="image"
    ),
    Endpoint("GET", "/api/projects/{project}/jobs/", EVERYONE, 200, api=True),
    Endpoint(
        "POST", "/api/projects/{project}/jobs/", LEADS, 201, api=True, data={"kind": "smoke", "params": {"steps": 2}}
    ),
    Endpoint("GET", "/api/projects/{project}/assets/", EVERYONE, 200, api=True),
    Endpoint("GET", "/api/projects/{project}/assets/{asset}/", EVERYONE, 200, api=True),
    Endpoint("GET", "/api/projects/{project}/videos/", EVERYONE, 200, api=True),
    Endpoint("POST", "/api/projects/{project}/uploads/", LEADS, 202, api=True, upload="files"),
    Endpoint("GET", "/api/projects/{project}/reviews/", EVERYONE, 200, api=True),
    Endpoint("GET", "/api/projects/{project}/reviews/{review}/frame/", REVIEWERS, 200, api=True),
    Endpoint(
        "POST",
        "/api/projects/{project}/reviews/{review}/votes/",
        REVIEWERS,
        201,
        api=True,
        data={"position": 0, "choices": {"overall": "B"}},
    ),  # fmt: skip
    Endpoint(
        "POST",
        "/api/projects/{project}/reviews/{review}/corrections/",
        REVIEWERS,
        201,
        api=True,
        data={"position": 0, "side": "B", "fields": {"background": "a corrected meadow"}},
    ),  # fmt: skip
    Endpoint("GET", "/api/projects/{project}/reviews/{review}/results/", EVERYONE, 200, api=True),
    Endpoint("GET", "/api/projects/{project}/exports/", LEADS, 200, api=True),
    Endpoint("POST", "/api/projects/{project}/exports/", LEADS, 201, api=True, data={"format": "jsonl"}),
    Endpoint("POST", "/api/projects/{project}/exports/preview/", LEADS, 200, api=True, data={"only_reviewed": True}),
    Endpoint("GET", "/api/projects/{project}/exports/{export}/", LEADS, 200, api=True),
    Endpoint("GET", "/api/jobs/{job}/", EVERYONE, 200, api=True),
    Endpoint("POST", "/api/jobs/{job}/cancel/", LEADS, 200, api=True),
]

ACTORS = ["anonymous", Role.LEAD, Role.ANNOTATOR, Role.REVIEWER]

# Routes outside the role matrix, each with the reason; every other route must be in ENDPOINTS.
NOT_IN_MATRIX = {
    "/": "redirects to the project list or the login page",
    "/healthz/": "public liveness probe",
    "/accounts/login/": "public: the login page itself",
    "/accounts/logout/": "ends any session",
    "/api/auth/token/": "public: exchanges a username and password for a token",
    "/api/schema/": "public API description (tests/test_schema.py; fuzzed per role in tests/guarantees/test_load.py)",
    "/api/docs/": "public API docs (tests/test_schema.py)",
    "/labeling/webhook/<>/": "Label Studio's webhook: authenticated by the project's secret, not a session",
    "/labeling/files/<>/": "frames served to Label Studio: authenticated by a signed URL, not a session",
}


def _world(project):
    character = CharacterFactory(project=project, name=f"Hero of {project.name}")
    upload = SimpleUploadedFile("hero.png", png_bytes(), content_type="image/png")
    reference = reference_image_add(character=character, upload=upload)
    job = JobFactory(project=project)
    asset, _ = asset_add(
        project=project, prepared=prepare_asset(Image.new("RGB", (32, 18), (project.id, 9, 9))), kind=AssetKind.IMAGE
    )
    embedding = curation_services.embedding_run_record(
        project=project, job=None, vectors_file=vectors_to_file([asset.id], np.ones((1, 4), np.float32)),
        model_key="test", model_name="test", count=1, dim=4,
    )  # fmt: skip
    clustering = curation_services.clustering_run_record(
        embedding_run=embedding, job=None, params={}, asset_ids=[asset.id], xy=[(0.0, 0.0)], labels=[0], seconds={}
    )
    gold_set = curation_services.gold_set_create(
        project=project, clustering=clustering, picks=[(asset.id, 0, "centroid")], params={}, created_by=None
    )
    labeled_gold_set = curation_services.gold_set_freeze(
        gold_set=curation_services.gold_set_create(
            project=project, clustering=clustering, picks=[(asset.id, 0, "centroid")], params={}, created_by=None
        )
    )
    labeling_project = LabelingProject.objects.create(
        project=project, gold_set=labeled_gold_set, webhook_secret="s", status="ready", ls_project_id=project.id
    )
    LabelingTask.objects.create(labeling_project=labeling_project, asset=asset, ls_task_id=project.id)
    frozen_gold_set = curation_services.gold_set_freeze(
        gold_set=curation_services.gold_set_create(
            project=project, clustering=clustering, picks=[(asset.id, 0, "centroid")], params={}, created_by=None
        )
    )
    model_versions_ensure(project=project)
    detector = ModelVersion.objects.get(project=project, role="detector", is_default=True)
    captioner = ModelVersion.objects.get(project=project, role="captioner", is_default=True)
    eval_set = EvalSet.objects.create(project=project, name="e", requested=1)
    comparison = Comparison.objects.create(
        project=project, eval_set=eval_set, captioner=captioner, profile="tiny", report=MINIMAL_REPORT
    )
    training_run = TrainingRun.objects.create(
        project=project, base_version=detector, labeling_project=labeling_project, gold_set_version=1
    )
    detection_run = detection_run_start(
        project=project, model_version=detector, asset_ids=[asset.id], created_by=None, enqueue=False
    )
    detection_run.job.status = "succeeded"  # as if its job had run
    detection_run.job.save()
    caption_run = caption_run_start(
        project=project, model_version=captioner, pipeline="detection", asset_ids=[asset.id],
        detection_run=detection_run, created_by=None, enqueue=False,
    )  # fmt: skip
    second_caption_run = caption_run_start(
        project=project, model_version=captioner, pipeline="no_detection", asset_ids=[asset.id],
        created_by=None, enqueue=False,
    )  # fmt: skip
    for run, scene in ((caption_run, "Someone in a meadow."), (second_caption_run, "Nobody in a meadow.")):
        fields = {"scene": scene, "background": "a meadow", "characters": [], "salient_objects": "a kite"}
        Caption.objects.create(run=run, asset=asset, fields=fields, model_version_label="m")
    review = review_create(baseline=caption_run, candidate=second_caption_run, created_by=None)
    export = Export.objects.create(project=project, source="best", format="jsonl", template="{scene}")
    export.archive.save("export.zip", ContentFile(b"PK\x05\x06" + bytes(18)))  # an empty zip
    return {
        "export": export.id,
        "review": review.id,
        "position": 0,
        "caption": review.frames.get().baseline_caption_id,
        "caption_run2": second_caption_run.id,
        "detector": detector.id,
        "captioner": captioner.id,
        "detection_run": detection_run.id,
        "caption_run": caption_run.id,
        "clustering": clustering.id,
        "gold_set": gold_set.id,
        "frozen_gold_set": frozen_gold_set.id,
        "labeling": labeling_project.id,
        "training_run": training_run.id,
        "eval_set": eval_set.id,
        "comparison": comparison.id,
        "project": project.id,
        "character": character.id,
        "reference": reference.id,
        "job": job.id,
        "asset": asset.id,
    }


@pytest.fixture
def worlds(db, django_capture_on_commit_callbacks):
    own, other = ProjectFactory(name="Own project"), ProjectFactory(name="Other project")
    UserFactory(username="outsider")
    return {"own": _world(own), "other": _world(other), "own_project": own}


def _request(endpoint: Endpoint, client, path: str, ids: dict):
    data = {key: value.format(**ids) if isinstance(value, str) else value for key, value in endpoint.data.items()}
    if endpoint.upload:
        data[endpoint.upload] = SimpleUploadedFile("ref.png", png_bytes(), content_type="image/png")
        return client.post(path, data, format="multipart") if endpoint.api else client.post(path, data)
    method = getattr(client, endpoint.method.lower())
    if endpoint.api and endpoint.method != "GET":
        return method(path, data, format="json")
    if endpoint.method == "GET":
        return method(path)
    return method(path, data)


def _cases():
    for endpoint in ENDPOINTS:
        scopes = ["own", "other"] if endpoint.project_scoped else ["own"]
        for scope in scopes:
            for actor in ACTORS:
                name = actor if isinstance(actor, str) else actor.value
                yield pytest.param(endpoint, actor, scope, id=f"{endpoint.id}-{name}-{scope}")


def _routes(patterns=None, prefix: str = ""):
    from django.urls import URLResolver, get_resolver

    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            if not route.startswith("admin/"):  # Django's admin: staff only, its own permission system
                yield from _routes(pattern.url_patterns, route)
        else:
            yield "/" + re.sub(r"<[^>]+>", "<>", route)


def test_19_every_route_is_in_the_matrix_or_exempt_for_a_stated_reason():
    routes = set(_routes())
    matrix = {re.sub(r"\{[a-z_]+\}", "<>", endpoint.path.split("?")[0]) for endpoint in ENDPOINTS}
    matrix = {re.sub(r"report\.(json|csv|html)$", "report.<>", path) for path in matrix}
    assert len(routes) > 50 and "/projects/<>/" in routes  # the walk found the app's routes
    assert sorted(routes - matrix - set(NOT_IN_MATRIX)) == [], "routes nobody checks the roles of"
    assert sorted((matrix | set(NOT_IN_MATRIX)) - routes) == [], "entries for routes that do not exist"


@pytest.mark.parametrize(("endpoint", "actor", "scope"), list(_cases()))
def test_19_role_endpoint_and_project_matrix(
    endpoint: Endpoint, actor, scope, worlds, django_capture_on_commit_callbacks
):
    client = APIClient() if endpoint.api else Client()
    if actor != "anonymous":
        user = UserFactory(role=actor)
        MembershipFactory(project=worlds["own_project"], user=user)
        client.force_login(user)
    path = endpoint.path.format(**worlds[scope])

    with django_capture_on_commit_callbacks(execute=False):
        response = _request(endpoint, client, path, worlds["own"])

    if actor == "anonymous":
        if endpoint.api:
            assert response.status_code == 401
        else:
            assert response.status_code == 302
            assert response["Location"].startswith("/accounts/login/")
    elif scope == "other":
        assert response.status_code == 404
    elif actor in endpoint.allowed:
        assert response.status_code == endpoint.success, getattr(response, "content", b"")[:500]
        if endpoint.success == 302:
            assert "/accounts/login/" not in response["Location"]
    else:
        assert response.status_code == 403


@pytest.mark.parametrize("role", [Role.LEAD, Role.ANNOTATOR, Role.REVIEWER])
def test_19_lists_show_only_own_projects(role, worlds, django_capture_on_commit_callbacks):
    user = UserFactory(role=role)
    MembershipFactory(project=worlds["own_project"], user=user)
    page_client, api = Client(), APIClient()
    page_client.force_login(user)
    api.force_authenticate(user)

    projects_page = page_client.get("/projects/").content.decode()
    assert "Own project" in projects_page and "Other project" not in projects_page
    api_names = [p["name"] for p in api.get("/api/projects/").json()["results"]]
    assert api_names == ["Own project"]
    jobs_page = page_client.get("/jobs/").content.decode()
    assert f'href="/jobs/{worlds["own"]["job"]}/"' in jobs_page
    assert f'href="/jobs/{worlds["other"]["job"]}/"' not in jobs_page


def test_19_annotator_sees_no_launch_or_edit_buttons(worlds):
    annotator = UserFactory(role=Role.ANNOTATOR)
    MembershipFactory(project=worlds["own_project"], user=annotator)
    client = Client()
    client.force_login(annotator)
    page = client.get(f"/projects/{worlds['own']['project']}/").content.decode()
    assert "Launch" not in page
    assert "Edit project" not in page
    assert "Add character" not in page
    assert ReferenceImage.objects.filter(id=worlds["own"]["reference"]).exists()


# ---------------------------------------------------------------- 20. IDOR


def _member_client(worlds, role=Role.LEAD, api=False, **options):
    user = UserFactory(role=role)
    MembershipFactory(project=worlds["own_project"], user=user)
    client = APIClient(**options) if api else Client(**options)
    client.force_login(user)
    return client


@pytest.mark.parametrize(
    "endpoint", [e for e in ENDPOINTS if e.project_scoped and re.search(r"\{(?!project\})", e.path)], ids=lambda e: e.id
)
def test_20_another_projects_object_under_ones_own_project_is_a_404(
    endpoint, worlds, django_capture_on_commit_callbacks
):
    """The guessed-id attack: one's own project in the URL, another project's object after it."""
    client = _member_client(worlds, api=endpoint.api)
    ids = {**worlds["other"], "project": worlds["own"]["project"]}
    if endpoint.path.startswith(("/media/", "/projects/references/", "/api/jobs/", "/jobs/")):
        ids = worlds["other"]  # addressed by the object alone: its project is the object's
    with django_capture_on_commit_callbacks(execute=False):
        response = _request(endpoint, client, endpoint.path.format(**ids), worlds["own"])
    assert response.status_code == 404, (endpoint.path.format(**ids), getattr(response, "content", b"")[:300])


@pytest.mark.parametrize("variant", ["image", "thumb"])
def test_20_guessed_media_urls_of_another_project_are_404(client, annotator, variant):
    other = ProjectFactory()
    foreign, _ = asset_add(
        project=other, prepared=prepare_asset(Image.new("RGB", (32, 18), (7, 7, 7))), kind=AssetKind.IMAGE
    )
    client.force_login(annotator)
    assert client.get(f"/media/assets/{foreign.id}/{variant}/").status_code == 404
    assert client.get(f"/media/assets/999999/{variant}/").status_code == 404
    outsider_member = UserFactory(role="annotator")
    MembershipFactory(project=other, user=outsider_member)
    client.force_login(outsider_member)
    assert client.get(f"/media/assets/{foreign.id}/{variant}/").status_code == 200


# ---------------------------------------------------------------- 21. ordering and filters

HOSTILE_QUERY = "ordering=password&ordering=-created_by__password&status=__all__&kind=<script>&project=1 OR 1=1"


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e.api and e.method == "GET"], ids=lambda e: e.id)
def test_21_ordering_and_filter_parameters_outside_the_allow_list_are_refused_or_ignored(
    endpoint, worlds, django_capture_on_commit_callbacks
):
    client = _member_client(worlds, api=True)
    path = endpoint.path.format(**worlds["own"])
    plain = client.get(path)
    hostile = client.get(f"{path}?{HOSTILE_QUERY}")
    assert plain.status_code == 200
    if hostile.status_code == 400:  # refused, and the answer says which parameter
        assert any(name in hostile.content.decode() for name in ("ordering", "status", "kind", "project"))
    else:  # ignored: the same answer as without them
        assert hostile.status_code == 200 and hostile.json() == plain.json()


def test_21_unknown_dashboard_filters_are_dropped(worlds):
    client = _member_client(worlds)
    plain = client.get("/jobs/")
    hostile = client.get(f"/jobs/?{HOSTILE_QUERY}")
    assert plain.status_code == hostile.status_code == 200
    assert "<script>" not in hostile.content.decode().split("</header>", 1)[1]  # nothing of it echoed raw


def test_21_ids_and_positions_past_a_database_integer_are_a_clear_answer_not_a_500(
    worlds, django_capture_on_commit_callbacks
):
    """A number no database integer holds (2**64) in a keyset, position or id parameter."""
    huge, own = str(2**64), worlds["own"]
    client, api = _member_client(worlds), _member_client(worlds, api=True)
    pages = [
        f"/projects/{own['project']}/runs/captions/{own['caption_run']}/?after={huge}",
        f"/projects/{own['project']}/gold/{own['gold_set']}/?after={huge}",
        f"/projects/{own['project']}/reviews/{own['review']}/?at={huge}",
    ]
    for url in pages:
        assert client.get(url).status_code == 200, url  # read as "from the top"
    for parameter in ("video", "after"):
        assert api.get(f"/api/projects/{own['project']}/assets/?{parameter}={huge}").status_code == 400, parameter
    assert api.get(f"/api/projects/{own['project']}/reviews/{own['review']}/frame/?at={huge}").status_code == 200
    with django_capture_on_commit_callbacks(execute=False):
        edit = client.post(
            f"/projects/{own['project']}/gold/{own['gold_set']}/edit/", {"action": "add", "asset_id": huge}
        )
    assert edit.status_code in (302, 404)


# ---------------------------------------------------------------- 22. CSRF


@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e.method != "GET"], ids=lambda e: e.id)
def test_22_posts_without_the_csrf_token_are_refused(endpoint, worlds, django_capture_on_commit_callbacks):
    """Pages and htmx posts (htmx sends the token from the page's hx-headers), and the API when
    it is called with the browser's session: 403 without the token. (A token-authenticated API
    call carries no cookie, so no CSRF.)"""
    client = _member_client(worlds, api=endpoint.api, enforce_csrf_checks=True)
    before = _row_counts()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = _request(endpoint, client, endpoint.path.format(**worlds["own"]), worlds["own"])
    assert response.status_code == 403, response.content[:300]
    assert "CSRF" in response.content.decode()
    assert _row_counts() == before and callbacks == []  # nothing written, nothing sent


def _row_counts() -> dict[str, int]:
    from django.apps import apps

    return {
        model._meta.label: model.objects.count() for model in apps.get_models() if model._meta.app_label != "sessions"
    }


# ---------------------------------------------------------------- 23. webhooks


@pytest.fixture
def webhook_target(db):
    world = labeling_world(frames=1, name="Webhook world")
    labeling_project = LabelingProject.objects.create(
        project=world.project, gold_set=world.gold_set, webhook_secret="right-secret", ls_project_id=77, status="ready"
    )
    return labeling_project


def _post(labeling_project, body, secret="right-secret"):
    headers = {"HTTP_X_VIVECAPTION_WEBHOOK_SECRET": secret} if secret is not None else {}
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return Client().post(
        f"/labeling/webhook/{labeling_project.id}/", data=data, content_type="application/json", **headers
    )


GOOD = {"action": "ANNOTATION_CREATED", "annotation": {"id": 5, "task": 1}, "project": {"id": 77}}


@pytest.mark.parametrize(
    "body, secret, status",
    [
        (GOOD, None, 401),
        (GOOD, "", 401),
        (GOOD, "wrong-secret", 401),
        (GOOD, "right-secret-but-longer", 401),
        (b"{not json", "right-secret", 400),
        (b"\xff\xfe", "right-secret", 400),
        ([1, 2], "right-secret", 400),
        ({**GOOD, "action": "PROJECT_DELETED"}, "right-secret", 400),
        ({"annotation": {"id": 5}}, "right-secret", 400),
        ({**GOOD, "annotation": {"id": "5"}}, "right-secret", 400),
        ({**GOOD, "annotation": {"id": -3}}, "right-secret", 400),
        ({**GOOD, "annotation": None}, "right-secret", 400),
        ({"action": "ANNOTATIONS_DELETED", "annotations": "all"}, "right-secret", 400),
        ({**GOOD, "project": {"id": 78}}, "right-secret", 400),
    ],
)
def test_23_bad_webhooks_are_refused_and_change_nothing(webhook_target, body, secret, status):
    response = _post(webhook_target, body, secret)
    assert response.status_code == status
    assert not PendingAnnotation.objects.exists() and not GoldLabel.objects.exists()
    webhook_target.refresh_from_db()
    assert not webhook_target.sync_queued


def test_23_webhook_for_an_unknown_labeling_project_answers_like_a_wrong_secret(webhook_target):
    response = Client().post(
        "/labeling/webhook/999999/",
        data=json.dumps(GOOD),
        content_type="application/json",
        HTTP_X_VIVECAPTION_WEBHOOK_SECRET="right-secret",
    )
    assert response.status_code == 401


def test_23_webhook_get_is_not_allowed(webhook_target):
    assert Client().get(f"/labeling/webhook/{webhook_target.id}/").status_code == 405


# ---------------------------------------------------------------- 24. deployment and secrets


def test_24_deploy_check_is_clean_under_production_settings_with_secrets_from_the_environment():
    result = _check(DOCUMENTED_PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_24_label_studio_token_never_reaches_a_browser(worlds, settings, django_capture_on_commit_callbacks):
    """Every page and API answer a member can read, with the app's Label Studio token set: the
    token is the server's, sent only to Label Studio (annotators sign in there with their own)."""
    settings.LABEL_STUDIO_TOKEN = "ls-secret-token-4242424242"
    for role in (Role.LEAD, Role.ANNOTATOR, Role.REVIEWER):
        for endpoint in (e for e in ENDPOINTS if e.method == "GET"):
            client = _member_client(worlds, role=role, api=endpoint.api)
            response = client.get(endpoint.path.format(**worlds["own"]))
            body = b"".join(response.streaming_content) if response.streaming else response.content
            assert b"ls-secret-token-4242424242" not in body, endpoint.path
