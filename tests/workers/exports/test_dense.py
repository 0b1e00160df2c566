"""Dense captions: natural name lists, tidy text when fields are empty, templates checked up front."""

import pytest

from workers.exports import DEFAULT_TEMPLATE, DenseTemplate, ExportConfig, join_names
from workers.exports.dense import tidy


def render(template: str = DEFAULT_TEMPLATE, **fields) -> str:
    values = {"scene": "", "background": "", "characters": (), "salient_objects": ""} | fields
    return DenseTemplate(template).render_fields(**values)


@pytest.mark.parametrize(
    ("names", "joined"),
    [
        ([], ""),
        (["Ana"], "Ana"),
        (["Ana", "Bo"], "Ana and Bo"),
        (["Ana", "Bo", "Cy"], "Ana, Bo and Cy"),
        (["Ana", " ", "Bo "], "Ana and Bo"),
    ],
)
def test_names_are_joined_as_a_sentence_would(names, joined):
    assert join_names(names) == joined


def test_the_default_template_reads_as_prose():
    text = render(
        scene="Ana stirs a pot.", background="a small kitchen", characters=["Ana", "Bo"], salient_objects="a pot"
    )
    assert text == "Ana and Bo in a small kitchen. Ana stirs a pot. a pot"


def test_no_characters_leaves_no_leading_junk():
    text = render(scene="Rain falls.", background="a town square", characters=[], salient_objects="puddles")
    assert text == "In a town square. Rain falls. puddles"


def test_empty_fields_leave_no_double_spaces_or_stray_punctuation():
    assert render(scene="", background="a corridor", characters=["Cy"], salient_objects="") == "Cy in a corridor."
    assert render(scene="Cy reads.", background="a library.", characters=["Cy"]) == "Cy in a library. Cy reads."
    assert render("{scene}, {salient_objects}.", scene="Cy reads") == "Cy reads."
    assert render("{characters}; {scene}", scene="  it\nrains  ") == "It rains"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  a   b  ", "A b"),
        ("word .", "Word."),
        ("end. . next", "End. next"),
        ("list,. end", "List. end"),
        ("wow!.", "Wow!"),
        (", , start", "Start"),
        ("trailing ,", "Trailing"),
    ],
)
def test_tidy(raw, clean):
    assert tidy(raw) == clean


def test_unknown_placeholders_are_refused_with_the_allowed_ones():
    with pytest.raises(ValueError) as error:
        DenseTemplate("{characters} near {place} at {time}")
    message = str(error.value)
    assert "{place}" in message and "{time}" in message
    assert "scene, background, characters, salient_objects" in message


@pytest.mark.parametrize(
    "template",
    ["{scene.__class__}", "{0}", "{}", "{scene[0]}", "no placeholder at all", "{scene", "{scene:d}", "{scene:{w}}"],
)
def test_templates_that_cannot_be_filled_are_refused(template):
    with pytest.raises(ValueError):
        DenseTemplate(template)


def test_an_export_config_checks_its_template():
    with pytest.raises(ValueError, match="allowed"):
        ExportConfig(format="dense", template="{mood}")
