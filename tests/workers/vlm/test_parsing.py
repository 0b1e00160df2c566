"""A corpus of what VLMs really answer, each with the result the parser must give."""

import pytest

from workers.vlm.parsing import parse_caption, parse_detection

ROSTER = {"Ellie": ["El"], "Victor": ["Vic", "Doctor Victor"], "Sprite": ["sprites"], "Tock": []}

DETECTIONS = [
    # raw answer, names, unknown, flags, ok
    ('["Ellie", "Victor"]', ["Ellie", "Victor"], [], [], True),
    ("[]", [], [], [], True),
    ('["victor", " ELLIE ", "Ellie"]', ["Ellie", "Victor"], [], [], True),
    ('["Vic", "sprites", "doctor  victor"]', ["Sprite", "Victor"], [], [], True),
    ('The frame shows ["Ellie", "Tock"] standing.', ["Ellie", "Tock"], [], ["prose_around_json"], True),
    ('```json\n["Sprite"]\n```', ["Sprite"], [], ["code_fence"], True),
    ('["Ellie", "Victor",]', ["Ellie", "Victor"], [], ["trailing_comma"], True),
    ("['Ellie', 'Tock']", ["Ellie", "Tock"], [], ["single_quotes"], True),
    ('["Ellie", "Vic', ["Ellie", "Victor"], [], ["truncated"], True),
    ('["Ellie", "Gandalf"]', ["Ellie"], ["Gandalf"], ["unknown_names"], True),
    ("Ellie, Victor", ["Ellie", "Victor"], [], ["not_json"], True),
    ("Ellie and Tock.", ["Ellie", "Tock"], [], ["not_json"], True),
    ('{"characters": ["Tock"]}', ["Tock"], [], ["wrapped_in_object"], True),
    ('[{"name": "Ellie"}]', ["Ellie"], [], ["objects_not_names"], True),
    ('["Ellie", 3, null]', ["Ellie"], [], ["wrong_type"], True),
    ("", [], [], ["empty"], False),
    ("   ", [], [], ["empty"], False),
    ('{"scene": "a beach"}', [], [], [], False),
    ('"Ellie"', [], [], [], False),
]


@pytest.mark.parametrize(("raw", "names", "unknown", "flags", "ok"), DETECTIONS)
def test_detection_corpus(raw, names, unknown, flags, ok):
    result = parse_detection(raw, ROSTER)
    assert (result.names, result.unknown, result.ok) == (names, unknown, ok)
    assert sorted(result.flags) == sorted(flags), result.flags  # exactly these: no spurious flag either
    assert result.raw == raw
    if not ok:
        assert result.error


GOOD = '{"scene": "Ellie waves", "background": "a beach", "characters": [{"name": "Ellie", "description": "waving"}], "salient_objects": "an umbrella"}'  # noqa: E501

CAPTIONS = [
    # raw, ok, flags, check
    (GOOD, True, [], lambda c: c["characters"][0]["name"] == "Ellie"),
    ("Here is the caption:\n" + GOOD + "\nHope this helps!", True, ["prose_around_json"], None),
    ("```json\n" + GOOD + "\n```", True, ["code_fence"], None),
    (GOOD[:-1] + ",}", True, ["trailing_comma"], None),
    (GOOD[:70], True, ["truncated", "missing_keys"], lambda c: c["scene"] == "Ellie waves"),
    (
        '{"scene": "x", "background": "y", "characters": ["Ellie", "Tock"], "salient_objects": ["a", "b"]}',
        True,
        [],
        lambda c: c["characters"][1] == {"name": "Tock", "description": ""} and c["salient_objects"] == "a, b",
    ),
    ('{"scene": "x", "background": "y"}', True, ["missing_keys"], lambda c: c["characters"] == []),
    ('{"scene": 5, "background": "y", "characters": [], "salient_objects": ""}', False, [], None),
    ('{"scene": "", "background": "y", "characters": [], "salient_objects": ""}', False, [], None),
    ('{"scene": "x", "background": "y", "characters": "Ellie", "salient_objects": ""}', False, [], None),
    ("", False, ["empty"], None),
    ('["not", "an", "object"]', False, [], None),
    ("I cannot describe this image.", False, [], None),
]


@pytest.mark.parametrize(("raw", "ok", "flags", "check"), CAPTIONS)
def test_caption_corpus(raw, ok, flags, check):
    result = parse_caption(raw)
    assert result.ok == ok, result.error
    assert sorted(result.flags) == sorted(flags), result.flags  # exactly these: no spurious flag either
    assert result.raw == raw
    if ok:
        assert set(result.caption) == {"scene", "background", "characters", "salient_objects"}
        if check:
            assert check(result.caption)
    else:
        assert result.caption is None and result.error


def test_a_structured_caption_collapses_into_one_paragraph():
    from workers.vlm.parsing import caption_paragraph

    fields = {
        "scene": "Ellie waves at Victor",
        "background": "A windy beach.",
        "characters": [{"name": "Ellie", "description": "a girl in a red coat"}, {"name": "Victor", "description": ""}],
        "salient_objects": "a kite",
    }
    assert (
        caption_paragraph(fields)
        == "Ellie waves at Victor. A windy beach. Ellie: a girl in a red coat. Victor. a kite."
    )
    assert caption_paragraph({"scene": "", "characters": [], "background": None}) == ""
