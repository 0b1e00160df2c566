"""A small labelling world: roster with references, frames, a frozen gold set, a finished detection run."""

from dataclasses import dataclass

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from apps.captioning.models import Detection, DetectionRun
from apps.captioning.services import run_frames_set
from apps.curation import services as curation_services
from apps.curation.models import GoldSet
from apps.media.models import Asset, AssetKind
from apps.media.services import asset_add
from apps.modelhub.models import ModelVersion
from apps.modelhub.services import model_versions_ensure
from apps.projects.models import Project
from apps.projects.services import reference_image_add
from tests.factories import CharacterFactory, ProjectFactory, png_bytes
from workers.media.assets import prepare_asset

ROSTER = ["Ellie", 'Dr. "Q" <Quinn> & Co', "Victor"]  # a name that needs escaping everywhere


@dataclass
class LabelingWorld:
    project: Project
    assets: list[Asset]
    gold_set: GoldSet
    detection_run: DetectionRun
    predicted: dict[int, list[str]]


def labeling_world(frames: int = 6, name: str = "Labelling world") -> LabelingWorld:
    project = ProjectFactory(name=name)
    for index, character_name in enumerate(ROSTER):
        character = CharacterFactory(project=project, name=character_name, description=f"Character {index}")
        reference_image_add(character=character, upload=SimpleUploadedFile("r.png", png_bytes(), "image/png"))
    assets = []
    for index in range(frames):
        image = Image.new("RGB", (48, 27), (index * 20 % 255, 90, 200 - index))
        asset, _ = asset_add(project=project, prepared=prepare_asset(image), kind=AssetKind.IMAGE)
        assets.append(asset)
    gold_set = curation_services.gold_set_freeze(
        gold_set=curation_services.gold_set_create(
            project=project,
            clustering=None,
            picks=[(asset.id, index, "centroid") for index, asset in enumerate(assets)],
            params={},
            created_by=None,
        )
    )
    model_versions_ensure(project=project)
    detector = ModelVersion.objects.get(project=project, role="detector", is_default=True)
    run = DetectionRun.objects.create(project=project, model_version=detector, gold_set=gold_set)
    run_frames_set(run=run, asset_ids=[a.id for a in assets])
    predicted = {}
    for index, asset in enumerate(assets):
        names = sorted(ROSTER[: index % 3])
        predicted[asset.id] = names
        Detection.objects.create(run=run, asset=asset, names=names, model_version_label="tiny-qwen2.5-vl")
    return LabelingWorld(project, assets, gold_set, run, predicted)


def labelling_member(project: Project, username: str, role: str = "annotator"):
    """An app user who is a member of the project with this role (e-mail username@example.com)."""
    from tests.factories import UserFactory

    user = UserFactory(username=username, email=f"{username}@example.com", role=role)
    project.memberships.create(user=user)
    return user


def in_label_studio(user, password: str):
    """The user's Label Studio account, made by the app (sign-up is off), with this initial password."""
    from apps.labeling.services import labelstudio_account_ensure

    outcome = labelstudio_account_ensure(user=user, password=password)
    assert outcome.status in ("created", "adopted", "existing"), outcome
    return user.labelstudio_account
