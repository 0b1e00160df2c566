"""A project whose gold frames are labelled (as Label Studio would have returned them): coloured
shapes per character, so a tiny detector has something learnable."""

import io

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image, ImageDraw

from apps.curation import services as curation_services
from apps.labeling.models import GoldLabel, LabelingProject, LabelingTask, LabelStudioAccount
from apps.media.models import AssetKind
from apps.media.services import asset_add
from apps.modelhub.models import ModelVersion
from apps.modelhub.services import model_versions_ensure
from apps.projects.services import reference_image_add
from tests.factories import CharacterFactory, ProjectFactory, UserFactory
from workers.media.assets import prepare_asset

COLOURS = {"Ellie": (220, 40, 40), "Sprite": (40, 90, 230), "Victor": (40, 170, 60)}


def _frame(names: list[str], index: int) -> Image.Image:
    image = Image.new("RGB", (64, 64), (235, 235, 225))
    draw = ImageDraw.Draw(image)
    for slot, name in enumerate(names):
        x = 4 + slot * 20 + index % 3
        draw.ellipse((x, 20, x + 16, 36 + index % 4), fill=COLOURS[name])
    draw.point((index % 64, 63), fill=(index % 256, 0, 0))  # every frame distinct (assets dedupe by pixels)
    return image


def labelled_project(frames: int = 12, name: str = "Training world"):
    """(project, labeling project, default detector, {asset id: names})."""
    project = ProjectFactory(name=name)
    for character_name, colour in COLOURS.items():
        character = CharacterFactory(project=project, name=character_name, description=f"a {character_name} blob")
        reference = Image.new("RGB", (32, 32), (235, 235, 225))
        ImageDraw.Draw(reference).ellipse((4, 4, 28, 28), fill=colour)
        buffer = io.BytesIO()
        reference.save(buffer, format="PNG")
        reference_image_add(character=character, upload=SimpleUploadedFile("r.png", buffer.getvalue(), "image/png"))
    names_cycle = [[], ["Ellie"], ["Victor"], ["Ellie", "Sprite"], ["Sprite", "Victor"], ["Ellie", "Victor"]]
    truth, assets = {}, []
    for index in range(frames):
        names = names_cycle[index % len(names_cycle)]
        asset, _ = asset_add(project=project, prepared=prepare_asset(_frame(names, index)), kind=AssetKind.IMAGE)
        assets.append(asset)
        truth[asset.id] = sorted(names)
    gold_set = curation_services.gold_set_freeze(
        gold_set=curation_services.gold_set_create(
            project=project, clustering=None, picks=[(a.id, i, "centroid") for i, a in enumerate(assets)],
            params={}, created_by=None,
        )
    )  # fmt: skip
    labeling_project = LabelingProject.objects.create(
        project=project, gold_set=gold_set, webhook_secret="s", ls_project_id=project.id, status="ready"
    )
    # Answers count only from a Label Studio account the app made for a labelling member (apps/labeling).
    username = f"labeller-{project.id}"
    annotator = UserFactory(username=username, email=f"{username}@example.com", role="annotator")
    project.memberships.create(user=annotator)
    account = LabelStudioAccount.objects.create(user=annotator, ls_user_id=1000 + project.id, ls_email=annotator.email)
    for index, asset in enumerate(assets):
        task = LabelingTask.objects.create(labeling_project=labeling_project, asset=asset, ls_task_id=index + 1)
        GoldLabel.objects.create(
            labeling_project=labeling_project, task=task, asset=asset, names=truth[asset.id], annotator=annotator,
            ls_user_id=account.ls_user_id, ls_user_email=account.ls_email,
            ls_annotation_id=index + 1, ls_updated_at=timezone.now(),
        )  # fmt: skip
    model_versions_ensure(project=project)
    detector = ModelVersion.objects.get(project=project, role="detector", is_default=True)
    return project, labeling_project, detector, truth
