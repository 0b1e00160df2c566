"""The tiny profile and a small world (two characters, five frames) for the run tests."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageDraw

from apps.media.models import AssetKind
from apps.media.services import asset_add
from apps.modelhub.services import model_versions_ensure
from apps.projects.services import character_create, reference_image_add
from tests.factories import png_bytes
from workers.media.assets import prepare_asset


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(autouse=True)
def _tiny(settings, models_dir):
    settings.MODEL_PROFILE = "tiny"
    settings.MODELS_DIR = models_dir


@pytest.fixture
def roster_and_frames(project):
    for name, color in [("Ellie", (230, 80, 90)), ("Victor", (30, 40, 120))]:
        character = character_create(project=project, name=name, description=f"{name} is a blob.", aliases=[name[:2]])
        reference_image_add(
            character=character, upload=SimpleUploadedFile(f"{name}.png", png_bytes((96, 96), color=color))
        )
    assets = []
    for index in range(5):
        image = Image.new("RGB", (320, 180), (40 * index, 120, 200))
        ImageDraw.Draw(image).ellipse((index * 30, 40, index * 30 + 80, 140), fill=(230, 80, 90))
        assets.append(asset_add(project=project, prepared=prepare_asset(image), kind=AssetKind.FRAME)[0])
    model_versions_ensure(project=project)
    return assets
