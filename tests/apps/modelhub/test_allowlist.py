"""The model-server allow-list where a base URL enters: the service, the page's form, the spec a
worker gets, and the configuration itself. (The rule's full table: tests/workers/vlm/test_allowlist.py.)"""

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import Client

from apps.core.errors import ApplicationError
from apps.modelhub.models import ModelVersion
from apps.modelhub.services import model_version_create

LIST = ["http://vllm:8000/v1", "https://api.example.com/v1"]
HOSTILE = [
    ("http://vllm:8000.evil.com/v1", "is not a number"),
    ("http://vllm:8000@evil.com/v1", "user-info"),
    ("http://vllm:8000#@evil.com", "a fragment"),
    ("http://evil.com?vllm:8000", "a query"),
    ("http://user:pass@vllm:8000/v1", "user-info"),
    ("http://vllm:8000/v1evil", "not on this installation's list"),
    ("http://vllm:8000/v1/../admin", "a '..' segment"),
    ("http://vllm:8000/v1/%2e%2e/admin", "percent-encoding"),
    ("https://api.example.com.evil.com/v1", "not on this installation's list"),
    ("https://api.example.com:443.evil.com/v1", "is not a number"),
    ("http://vllm:8000\\@evil.com/v1", "a backslash"),
    ("http://2130706433:8000/v1", "a number in a form other than a.b.c.d"),
    ("http://\uff56llm:8000/v1", "non-ASCII"),
]


@pytest.fixture(autouse=True)
def _allow_list(settings):
    settings.VLM_ALLOWED_BASE_URLS = list(LIST)


def _create(project, base_url, name="served"):
    return model_version_create(
        project=project, role="detector", name=name, model="m", backend="openai", base_url=base_url
    )


@pytest.mark.parametrize(("url", "reason"), HOSTILE)
def test_the_service_refuses_hostile_urls_and_stores_nothing(project, url, reason):
    with pytest.raises(ApplicationError) as refused:
        _create(project, url)
    assert refused.value.field == "base_url" and reason in refused.value.message
    assert not ModelVersion.objects.filter(project=project, backend="openai").exists()


def test_the_service_stores_the_normal_form(project):
    assert _create(project, "HTTP://VLLM:8000/v1/").base_url == "http://vllm:8000/v1"
    assert (
        _create(project, "https://API.example.com:443/v1/chat", name="b").base_url == "https://api.example.com/v1/chat"
    )


def test_the_page_refuses_a_hostile_url_with_the_reason_and_stores_nothing(project, lead):
    client = Client()
    client.force_login(lead)
    form = {"role": "detector", "name": "served", "backend": "openai", "model": "m"}
    response = client.post(f"/projects/{project.id}/models/add/", {**form, "base_url": "http://vllm:8000@evil.com/v1"})
    assert response.status_code == 302  # the page's convention: back to the runs page with the message
    text = " ".join(str(message) for message in get_messages(response.wsgi_request))
    assert "user-info" in text and "base_url" in text
    assert not ModelVersion.objects.filter(project=project, name="served").exists()


def test_the_page_adds_a_listed_server_under_a_single_label_host(project, lead):
    """Django's URLField refused http://vllm:8000/v1 (no dot in the host); the allow-list decides now."""
    client = Client()
    client.force_login(lead)
    form = {"role": "detector", "name": "served", "backend": "openai", "model": "m"}
    response = client.post(f"/projects/{project.id}/models/add/", {**form, "base_url": " HTTP://vllm:8000/v1 "})
    assert response.status_code == 302
    assert ModelVersion.objects.get(project=project, name="served").base_url == "http://vllm:8000/v1"


def test_the_spec_carries_the_allow_list_and_the_worker_refuses_a_stored_url_off_it(project, settings):
    """A row stored before the list changed (or under the old prefix check) is refused by the worker."""
    from apps.modelhub.specs import model_spec_for
    from workers.vlm.allowlist import URLRefused
    from workers.vlm.backends import load_backend

    version = ModelVersion.objects.create(
        project=project,
        role="detector",
        name="old",
        model="m",
        backend="openai",
        base_url="http://vllm:8000@evil.com/v1",
    )
    spec = model_spec_for(version)
    assert spec.allowed_base_urls == ("http://vllm:8000/v1", "https://api.example.com/v1")
    with pytest.raises(URLRefused, match="user-info"):
        load_backend(spec)
    version.base_url = "http://vllm:8000/v1"
    settings.VLM_ALLOWED_BASE_URLS = ["http://other:8000/"]
    with pytest.raises(URLRefused, match="not on this installation's list"):
        load_backend(model_spec_for(version))


def test_transformers_specs_do_not_need_the_allow_list(project, settings):
    from apps.modelhub.specs import model_spec_for

    settings.VLM_ALLOWED_BASE_URLS = ["http://user@bad"]
    version = ModelVersion.objects.create(project=project, role="detector", name="local", model="/models/x")
    assert model_spec_for(version).allowed_base_urls == ()


def test_a_malformed_allow_list_is_a_configuration_error(project, settings):
    from apps.modelhub.specs import model_spec_for

    settings.VLM_ALLOWED_BASE_URLS = ["http://vllm:8000/v1", "http://user@vllm:8000"]
    with pytest.raises(ImproperlyConfigured, match="VLM_ALLOWED_BASE_URLS entry 'http://user@vllm:8000'.*user-info"):
        _create(project, "http://vllm:8000/v1")
    version = ModelVersion.objects.create(
        project=project, role="detector", name="x", model="m", backend="openai", base_url="http://vllm:8000/v1"
    )
    with pytest.raises(ImproperlyConfigured, match="user-info"):
        model_spec_for(version)
    with pytest.raises(SystemCheckError, match="modelhub.E001"):
        call_command("check")
    settings.VLM_ALLOWED_BASE_URLS = "http://vllm:8000/"  # a string, not a list
    with pytest.raises(SystemCheckError, match="must be a list of URLs"):
        call_command("check")
