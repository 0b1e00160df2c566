import io

import factory
from django.contrib.auth.models import Group, User
from PIL import Image

from apps.core.permissions import Role
from apps.jobs.models import Job
from apps.projects.models import Character, Membership, Project


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.PostGenerationMethodCall("set_password", "pw-for-tests-1")

    @factory.post_generation
    def role(self, create, extracted, **kwargs):
        if extracted:
            # get_or_create: transactional tests flush the groups the data migration made.
            self.groups.add(Group.objects.get_or_create(name=Role(extracted).value)[0])
        self.save()


class ProjectFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Project

    name = factory.Sequence(lambda n: f"Project {n}")
    description = "A test project"


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    project = factory.SubFactory(ProjectFactory)
    user = factory.SubFactory(UserFactory)


class CharacterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Character

    project = factory.SubFactory(ProjectFactory)
    name = factory.Sequence(lambda n: f"Character {n}")
    description = "Wears a hat."


class JobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Job

    kind = "smoke"
    project = factory.SubFactory(ProjectFactory)
    params = factory.LazyFunction(lambda: {"steps": 2, "step_seconds": 0.0, "fail_at_step": None})


def png_bytes(size: tuple[int, int] = (32, 24), color=(200, 30, 30), fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()
