"""docs/guarantees.md and the suite agree: every checklist item (QUALITY.md, 27) has a test named
after it here, the page lists every such test, and every test the page names exists."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = (ROOT / "docs" / "guarantees.md").read_text()


def _tests(folder: Path) -> dict[str, Path]:
    found = {}
    for path in folder.rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                found[node.name] = path
    return found


def test_every_checklist_item_has_a_test_named_after_it_and_the_page_lists_it():
    suite = _tests(ROOT / "tests" / "guarantees")
    items = {int(match[1]) for name in suite if (match := re.match(r"test_(\d\d)_", name))}
    assert items == set(range(1, 28))
    unlisted = sorted(name for name in suite if re.match(r"test_(\d\d|fault)_", name) and f"`{name}`" not in PAGE)
    assert unlisted == []


def test_every_test_the_page_names_exists():
    everywhere = _tests(ROOT / "tests")
    named = set(re.findall(r"`(?:[\w/.]+::)?(test_\w+)`", PAGE))
    assert len(named) > 40 and sorted(named - set(everywhere)) == []
