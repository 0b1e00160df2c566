"""What an ingest job left: its per-file outcomes and the files in storage (the `ingest` fixture,
in tests/conftest.py, runs one)."""


def stored_files(settings) -> list[str]:
    root = settings.MEDIA_ROOT
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def outcomes(job) -> dict[str, tuple[str, str]]:
    return {entry["name"]: (entry["outcome"], entry["reason"]) for entry in job.result["files"]}
