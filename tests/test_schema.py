def test_openapi_schema_lists_every_api_endpoint(client, db):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "/api/projects/",
        "/api/projects/{project_id}/characters/{character_id}/references/",
        "/api/projects/{project_id}/jobs/",
        "/api/jobs/{job_id}/cancel/",
        "/api/auth/token/",
    ):
        assert path in paths


def test_api_docs_page_uses_no_cdn(client, db):
    body = client.get("/api/docs/").content.decode()
    assert "cdn." not in body and "unpkg" not in body and "/static/drf_spectacular_sidecar/" in body
