"""What the benchmarks share: a throwaway PostgreSQL database made afresh for each run."""

from urllib.parse import urlparse


def fresh_postgres(url: str) -> None:
    """Drop and create the database `url` names (never the one the demo or the tests use)."""
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    with psycopg.connect(parsed._replace(path="/postgres").geturl(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
