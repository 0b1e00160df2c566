"""A served model's requests carry the project's reference set as their routing key, so a
prefix-aware router in front of N replicas keeps them where that prefix is cached."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.modelhub.models import ModelVersion
from apps.modelhub.specs import model_spec_for
from apps.projects.services import character_create, reference_image_add
from tests.factories import png_bytes

pytestmark = pytest.mark.django_db


def _served(project, **settings_):
    return ModelVersion.objects.create(
        project=project, role="detector", name=f"fleet-{ModelVersion.objects.count()}", model="m", backend="openai",
        base_url="http://router:8000/v1", settings=settings_,
    )  # fmt: skip


def test_the_routing_key_names_the_reference_set_and_changes_with_it(project, other_project):
    ellie = character_create(project=project, name="Ellie", description="A red blob.")
    reference_image_add(character=ellie, upload=SimpleUploadedFile("e.png", png_bytes((32, 32))))
    first = model_spec_for(_served(project))
    assert first.routing_key.startswith(f"vive-{project.id}-") and first.routing_header == "X-Session-Id"
    assert model_spec_for(_served(project, concurrency=64)).routing_key == first.routing_key  # same set, same key

    reference_image_add(character=ellie, upload=SimpleUploadedFile("e2.png", png_bytes((32, 32), color=(1, 2, 3))))
    assert model_spec_for(_served(project)).routing_key != first.routing_key  # a new prefix: a new key
    character_create(project=other_project, name="Ellie", description="A red blob.")
    assert model_spec_for(_served(other_project)).routing_key != first.routing_key


def test_the_routing_header_follows_the_router_and_local_models_get_no_key(project):
    spec = model_spec_for(_served(project, routing_header="x-user-id", concurrency=64))
    assert spec.routing_header == "x-user-id" and spec.concurrency == 64
    local = ModelVersion.objects.create(project=project, role="detector", name="local", model="/models/x")
    assert model_spec_for(local).routing_key == ""
