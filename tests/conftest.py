import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from rest_framework.test import APIClient

from apps.core.permissions import Role
from apps.jobs.models import JobStatus
from apps.jobs.runner import job_execute
from apps.media.services import ingest_start
from tests.factories import MembershipFactory, ProjectFactory, UserFactory
from tests.labelstudio import FaultyProxy, start_label_studio, stop_label_studio


def pytest_report_header(config):
    from django.conf import settings as django_settings

    engine = django_settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
    broker = django_settings.CELERY_BROKER_URL.split("://", 1)[0]
    return f"vivecaption backends: database={engine} broker={broker}"


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def project(db):
    return ProjectFactory()


@pytest.fixture
def other_project(db):
    return ProjectFactory(name="Someone else's project")


def _member(project, role: Role):
    user = UserFactory(role=role)
    MembershipFactory(project=project, user=user)
    return user


@pytest.fixture
def lead(project):
    return _member(project, Role.LEAD)


@pytest.fixture
def annotator(project):
    return _member(project, Role.ANNOTATOR)


@pytest.fixture
def reviewer(project):
    return _member(project, Role.REVIEWER)


@pytest.fixture
def api_client():
    return APIClient()


def database_backend() -> str:
    return connection.vendor


def broker_scheme() -> str:
    return settings.CELERY_BROKER_URL.split("://", 1)[0]


@pytest.fixture
def role_groups(transactional_db):
    """Transactional tests flush tables, data-migration rows included: put the role groups back."""
    import importlib

    from django.apps import apps

    importlib.import_module("apps.accounts.migrations.0001_role_groups").create_role_groups(apps, None)


@pytest.fixture
def ingest(project, lead):
    """Ingest (name, bytes) files into `project`; the job must succeed (refusals are per file)."""

    def run(*files: tuple[str, bytes], every: float = 1.0):
        uploads = [SimpleUploadedFile(name, data) for name, data in files]
        job = ingest_start(project=project, uploads=uploads, created_by=lead, sample_every_seconds=every, enqueue=False)
        job_execute(job.id)
        job.refresh_from_db()
        assert job.status == JobStatus.SUCCEEDED, job.error
        return job

    return run


@pytest.fixture(scope="session")
def label_studio(tmp_path_factory):
    """One real Label Studio for the session (fresh data dir from the migrated template)."""
    server = start_label_studio(tmp_path_factory.mktemp("labelstudio") / "data")
    yield server
    stop_label_studio(server)


@pytest.fixture
def faulty_proxy(label_studio):
    proxy = FaultyProxy(label_studio.url)
    yield proxy
    proxy.close()


@pytest.fixture
def ls_settings(settings, label_studio, live_server):
    """The app talks to the session's Label Studio, which posts webhooks to the live test server."""
    settings.LABEL_STUDIO_URL = settings.LABEL_STUDIO_PUBLIC_URL = label_studio.url
    settings.LABEL_STUDIO_TOKEN = label_studio.token
    settings.LABEL_STUDIO_BACKOFF_SECONDS = 0.05
    settings.LABELING_APP_URL = settings.LABELING_WEBHOOK_BASE_URL = live_server.url
    return settings
