import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient

from apps.core.permissions import Role
from tests.factories import MembershipFactory, ProjectFactory, UserFactory


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
