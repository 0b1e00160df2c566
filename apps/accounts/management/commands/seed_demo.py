"""Create one user per role and a sample project with a small roster (idempotent)."""

import io
import json
import secrets

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand
from PIL import Image, ImageDraw

from apps.accounts.services import user_create, user_set_role
from apps.core.permissions import Role
from apps.projects import services as project_services
from apps.projects.models import Character, Membership, Project

DEMO_USERS = {"lead": Role.LEAD, "annotator": Role.ANNOTATOR, "annotator2": Role.ANNOTATOR, "reviewer": Role.REVIEWER}
# The app makes each labelling member's Label Studio account (with this e-mail) and records the
# mapping; only answers from those accounts count as gold labels.
DEMO_EMAIL_DOMAIN = "example.com"
SAMPLE_CHARACTERS = [
    ("Ellie", "A small girl in a red coat with a yellow hat.", (220, 50, 50)),
    ("Victor", "A tall inventor in a green jacket.", (40, 160, 80)),
    ("Sprite", "Tiny blue glowing creatures that often appear in groups.", (60, 110, 230)),
]


def _sprite_png(color: tuple[int, int, int]) -> bytes:
    image = Image.new("RGB", (128, 128), (245, 245, 240))
    draw = ImageDraw.Draw(image)
    draw.ellipse((24, 16, 104, 96), fill=color)
    draw.rectangle((44, 90, 84, 120), fill=tuple(c // 2 for c in color))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class Command(BaseCommand):
    help = "Seed demo users (one per role) and a sample project; prints the credentials."

    def handle(self, *args, **options):
        credentials_path = settings.VAR_DIR / "demo-credentials.json"
        credentials = json.loads(credentials_path.read_text()) if credentials_path.exists() else {}
        for username, role in DEMO_USERS.items():
            password = credentials.get(username) or secrets.token_urlsafe(9)
            user = User.objects.filter(username=username).first()
            if user is None:
                user = user_create(
                    username=username, password=password, role=role, email=f"{username}@{DEMO_EMAIL_DOMAIN}"
                )
            else:
                user.set_password(password)
                user.email = user.email or f"{username}@{DEMO_EMAIL_DOMAIN}"
                user.save(update_fields=["password", "email"])
                user_set_role(user=user, role=role)
            credentials[username] = password
        credentials_path.parent.mkdir(parents=True, exist_ok=True)
        credentials_path.write_text(json.dumps(credentials, indent=2))
        credentials_path.chmod(0o600)

        lead = User.objects.get(username="lead")
        project = Project.objects.filter(name="Sample project").first()
        if project is None:
            project = project_services.project_create(
                name="Sample project",
                description="A small roster to try the app with. `make demo` adds the demo world later.",
                created_by=lead,
            )
        for username in DEMO_USERS:
            Membership.objects.get_or_create(project=project, user=User.objects.get(username=username))
        for name, description, color in SAMPLE_CHARACTERS:
            if Character.objects.filter(project=project, name=name).exists():
                continue
            character = project_services.character_create(project=project, name=name, description=description)
            upload = SimpleUploadedFile(f"{name.lower()}.png", _sprite_png(color), content_type="image/png")
            project_services.reference_image_add(character=character, upload=upload)

        self.stdout.write(f"Sample project: id {project.id}")
        for username, password in credentials.items():
            self.stdout.write(f"  {username:<10} password: {password}   (role {DEMO_USERS[username].value})")
