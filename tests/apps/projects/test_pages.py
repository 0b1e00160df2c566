"""What a lead and an annotator see and do in the browser (server-rendered pages)."""

import json

from django.core.files.uploadedfile import SimpleUploadedFile

from apps.projects.models import Character, Project, ReferenceImage
from tests.factories import CharacterFactory, png_bytes

DANGEROUS = '<b>Bold</b> "Q" & </script><script>alert(1)</script>'


def test_lead_creates_a_project_and_a_character_with_references(client, lead, project):
    client.force_login(lead)
    response = client.post("/projects/new/", {"name": "Short film", "description": "Ten minutes."})
    created = Project.objects.get(name="Short film")
    assert response["Location"] == f"/projects/{created.id}/"

    response = client.post(
        f"/projects/{created.id}/characters/new/", {"name": "Ellie", "aliases": "El", "description": "Red coat"}
    )
    ellie = Character.objects.get(project=created, name="Ellie")
    assert response["Location"] == f"/projects/{created.id}/characters/{ellie.id}/"

    files = [
        SimpleUploadedFile("front.png", png_bytes(), content_type="image/png"),
        SimpleUploadedFile("side.jpg", png_bytes(fmt="JPEG"), content_type="image/jpeg"),
    ]
    client.post(f"/projects/{created.id}/characters/{ellie.id}/references/", {"images": files})
    assert ReferenceImage.objects.filter(character=ellie).count() == 2

    page = client.get(f"/projects/{created.id}/").content.decode()
    assert "Ellie" in page and "Red coat" in page
    for reference in ellie.references.all():
        assert f"/projects/references/{reference.id}/file/" in page


def test_htmx_upload_reports_each_file_and_keeps_the_good_ones(client, lead, project):
    client.force_login(lead)
    character = CharacterFactory(project=project)
    files = [
        SimpleUploadedFile("good.png", png_bytes(), content_type="image/png"),
        SimpleUploadedFile("resume.pdf", b"%PDF-1.4 fake", content_type="image/png"),
    ]
    response = client.post(
        f"/projects/{project.id}/characters/{character.id}/references/", {"images": files}, HTTP_HX_REQUEST="true"
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "good.png: added" in body
    assert "resume.pdf: The file is not an image this app can read." in body
    assert ReferenceImage.objects.filter(character=character).count() == 1


def test_reference_file_is_served_with_its_true_type_and_nosniff(client, annotator, project):
    from apps.projects.services import reference_image_add

    character = CharacterFactory(project=project)
    reference = reference_image_add(
        character=character, upload=SimpleUploadedFile("x.png", png_bytes(), content_type="text/html")
    )
    client.force_login(annotator)
    response = client.get(f"/projects/references/{reference.id}/file/")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")


def test_dangerous_names_are_escaped_in_pages_and_api(client, lead, project, django_capture_on_commit_callbacks):
    project.name = DANGEROUS
    project.save()
    character = CharacterFactory(project=project, name=DANGEROUS, description=DANGEROUS, aliases=[DANGEROUS])
    client.force_login(lead)
    pages = [
        "/projects/",
        f"/projects/{project.id}/",
        f"/projects/{project.id}/edit/",
        f"/projects/{project.id}/characters/{character.id}/",
    ]
    for url in pages:
        body = client.get(url).content.decode()
        assert "<script>alert(1)</script>" not in body, url
        assert "<b>Bold</b>" not in body, url
        assert "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in body, url

    response = client.get(f"/api/projects/{project.id}/characters/")
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content)["results"][0]["name"] == DANGEROUS

    with django_capture_on_commit_callbacks(execute=False):
        job_page = client.post(f"/jobs/launch/{project.id}/", {"kind": "smoke"}, follow=True).content.decode()
    assert "<script>alert(1)</script>" not in job_page


def test_duplicate_character_name_shows_a_form_error(client, lead, project):
    CharacterFactory(project=project, name="Ellie")
    client.force_login(lead)
    response = client.post(f"/projects/{project.id}/characters/new/", {"name": "ellie"})
    assert response.status_code == 200
    assert "already has a character named" in response.content.decode()


def test_api_refuses_a_non_image_reference_with_a_clear_message(api_client, lead, project):
    character = CharacterFactory(project=project)
    api_client.force_authenticate(lead)
    response = api_client.post(
        f"/api/projects/{project.id}/characters/{character.id}/references/",
        {"image": SimpleUploadedFile("notes.txt", b"hello", content_type="image/png")},
        format="multipart",
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "notes.txt: The file is not an image this app can read."
    assert response.json()["code"] == "not_an_image"
    assert not ReferenceImage.objects.exists()


def test_api_character_crud_round_trip(api_client, lead, project):
    api_client.force_authenticate(lead)
    created = api_client.post(
        f"/api/projects/{project.id}/characters/", {"name": "Sprite", "aliases": ["sprites"]}, format="json"
    ).json()
    assert created["aliases"] == ["sprites"]
    clash = api_client.post(f"/api/projects/{project.id}/characters/", {"name": "SPRITE"}, format="json")
    assert clash.status_code == 400 and "already has a character" in clash.json()["detail"]
    patched = api_client.patch(
        f"/api/projects/{project.id}/characters/{created['id']}/", {"description": "Blue glow"}, format="json"
    ).json()
    assert patched["description"] == "Blue glow"
