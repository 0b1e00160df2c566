"""The README says what exists now: every command it shows exists, and none of the phrases that
marked claims about later work (or missing work that has since landed) is left."""

import re
from pathlib import Path

from django.core.management import get_commands

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()

# Phrases that were in the README when they had stopped being true (issue #12, item 11).
STALE = [
    r"this release has no model code yet",
    r"from the [a-z -]+ issue on",
    r"arrive issue by issue",
    r"captions side by\s+side\)",
    r"It refreshes every 3 s",
    r"matched to people",
]


def test_the_readme_makes_no_stale_claims():
    found = [pattern for pattern in STALE if re.search(pattern, README)]
    assert found == []


def test_every_management_command_the_readme_shows_exists():
    shown = set(re.findall(r"manage\.py ([a-z_]+)", README))
    assert {"ingest", "embed", "evaluate", "train_detector"} <= shown  # the parse found the commands
    assert sorted(shown - set(get_commands())) == []


def test_every_make_target_the_readme_shows_exists():
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, flags=re.M))
    shown = set(re.findall(r"`make ([a-z-]+)`", README)) | set(re.findall(r"^make ([a-z-]+)", README, flags=re.M))
    assert {"demo", "test"} <= shown
    assert sorted(shown - targets) == []
