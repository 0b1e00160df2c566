"""A project with two caption runs over the same frames — captions that differ frame to frame —
as the review workspace finds them after an evaluation."""

from PIL import Image

from apps.captioning.models import Caption, CaptionRun
from apps.captioning.services import run_answers_recount, run_frames_set
from apps.media.models import AssetKind
from apps.media.services import asset_add
from apps.modelhub.models import ModelVersion
from apps.modelhub.services import model_versions_ensure
from apps.review.services import review_create
from tests.factories import CharacterFactory
from workers.media.assets import prepare_asset

NAMES = ["Ellie", "Victor", "Bruno"]
PLACES = ["a sunny meadow", "a dark forest", "a night street", "a sandy beach"]


def caption_fields(index: int, names: list[str], place: str) -> dict:
    return {
        "scene": f"{' and '.join(names) or 'Nobody'} in {place}, shot {index}.",
        "background": place,
        "characters": [{"name": name, "description": f"{name.lower()} standing"} for name in names],
        "salient_objects": ["a red kite", "a lamp post", "a bench"][index % 3],
    }


def review_world(project, frames: int = 8):
    """(review, baseline run, candidate run): the candidate names the right characters, the
    baseline one too many on every other frame; frame 3's baseline caption is out of the schema."""
    for name in NAMES:
        CharacterFactory(project=project, name=name)
    model_versions_ensure(project=project)
    captioner = ModelVersion.objects.get(project=project, role="captioner", is_default=True)
    assets = []
    for index in range(frames):
        image = Image.new("RGB", (48, 32), (20 + index * 25 % 230, 90, 160 - index * 10 % 150))
        asset, _ = asset_add(project=project, prepared=prepare_asset(image), kind=AssetKind.IMAGE)
        assets.append(asset)
    ids = [asset.id for asset in assets]
    baseline = CaptionRun.objects.create(project=project, model_version=captioner, pipeline="detection")
    candidate = CaptionRun.objects.create(project=project, model_version=captioner, pipeline="detection")
    for run in (baseline, candidate):
        run_frames_set(run=run, asset_ids=ids)
    for index, asset in enumerate(assets):
        truth = NAMES[: 1 + index % 2]
        extra = truth + ["Bruno"] if index % 2 == 0 else truth
        place = PLACES[index % len(PLACES)]
        Caption.objects.create(
            run=baseline,
            asset=asset,
            fields=None if index == 3 else caption_fields(index, extra, place),
            ok=index != 3,
            characters_given=extra,
            model_version_label="base",
        )
        Caption.objects.create(
            run=candidate,
            asset=asset,
            fields=caption_fields(index, truth, place),
            characters_given=truth,
            model_version_label="fine-tuned",
        )
    for run in (baseline, candidate):  # as the run's job leaves it: its answers counted
        run_answers_recount(run=run)
    review = review_create(
        baseline=baseline, candidate=candidate, created_by=None, labels=("base → captioner", "fine-tuned → captioner")
    )
    return review, baseline, candidate
