import gc

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.core.errors import ApplicationError
from apps.core.permissions import Role
from apps.projects import services
from apps.projects.models import Character, Membership, ReferenceImage
from tests.factories import CharacterFactory, UserFactory, png_bytes


def _files_under(root) -> list:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_creating_a_project_makes_the_creator_a_member(db):
    lead = UserFactory(role=Role.LEAD)
    project = services.project_create(name="  Film A  ", description="d", created_by=lead)
    assert project.name == "Film A"
    assert Membership.objects.filter(project=project, user=lead).exists()


def test_a_new_project_gets_the_profiles_models_even_after_a_garbage_collection(db):
    """The model hub's receiver of project_created must outlive AppConfig.ready (it once did not:
    a weakly held local function, gone at the first collection, and new projects had no models)."""
    gc.collect()
    project = services.project_create(name="Film B", created_by=UserFactory(role=Role.LEAD))
    roles = set(project.model_versions.values_list("role", flat=True))
    assert {"detector", "captioner"} <= roles
    assert project.model_versions.filter(role="detector", is_default=True).count() == 1


def test_project_needs_a_name(db):
    with pytest.raises(ApplicationError, match="needs a name"):
        services.project_create(name="   ", created_by=UserFactory())


def test_character_names_are_unique_per_project_ignoring_case(project, other_project):
    services.character_create(project=project, name="Ellie")
    with pytest.raises(ApplicationError, match="already has a character named 'ELLIE'"):
        services.character_create(project=project, name="ELLIE")
    services.character_create(project=other_project, name="Ellie")  # another project is fine
    assert Character.objects.filter(name__iexact="ellie").count() == 2


def test_aliases_are_trimmed_and_deduplicated(project):
    character = services.character_create(project=project, name="Victor", aliases=" Vic , vic, Doc ,, ")
    assert character.aliases == ["Vic", "Doc"]


def test_rename_to_an_existing_name_is_refused(project):
    services.character_create(project=project, name="Ellie")
    victor = services.character_create(project=project, name="Victor")
    with pytest.raises(ApplicationError, match="already has a character named 'ellie'"):
        services.character_update(character=victor, name="ellie")
    victor.refresh_from_db()
    assert victor.name == "Victor"


def test_reference_image_is_reencoded_as_png(project, settings):
    character = CharacterFactory(project=project)
    upload = SimpleUploadedFile("photo.jpg", png_bytes((50, 40), fmt="JPEG"), content_type="image/jpeg")
    reference = services.reference_image_add(character=character, upload=upload)
    assert (reference.width, reference.height, reference.content_type) == (50, 40, "image/png")
    assert reference.image.name.endswith(".png")
    assert "photo" not in reference.image.name  # the uploader's name never reaches the file system
    assert reference.image.read().startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("notes.txt", b"just some text", "not an image"),
        ("evil.png", b"<html><script>alert(1)</script></html>", "not an image"),
        ("anim.gif", png_bytes(fmt="GIF"), "GIF images are not accepted"),
        ("cut.png", png_bytes((64, 64))[:60], "truncated or corrupt"),
    ],
)
def test_non_images_are_refused_with_a_clear_message_and_nothing_stored(project, settings, name, data, message):
    character = CharacterFactory(project=project)
    upload = SimpleUploadedFile(name, data, content_type="image/png")
    with pytest.raises(ApplicationError) as excinfo:
        services.reference_image_add(character=character, upload=upload)
    assert excinfo.value.message.startswith(f"{name}: ")
    assert message in excinfo.value.message
    assert not ReferenceImage.objects.exists()
    assert _files_under(settings.MEDIA_ROOT) == []


def test_oversize_reference_is_refused_before_reading(project, settings):
    settings.REFERENCE_IMAGE_MAX_BYTES = 100
    character = CharacterFactory(project=project)
    upload = SimpleUploadedFile("big.png", png_bytes((200, 200), color=(1, 2, 3)), content_type="image/png")
    with pytest.raises(ApplicationError, match="the limit is 100"):
        services.reference_image_add(character=character, upload=upload)
    assert not ReferenceImage.objects.exists()


def test_deleting_a_character_removes_its_files(project, settings, django_capture_on_commit_callbacks):
    character = CharacterFactory(project=project)
    upload = SimpleUploadedFile("a.png", png_bytes(), content_type="image/png")
    services.reference_image_add(character=character, upload=upload)
    assert len(_files_under(settings.MEDIA_ROOT)) == 1
    with django_capture_on_commit_callbacks(execute=True):
        services.character_delete(character=character)
    assert _files_under(settings.MEDIA_ROOT) == []
