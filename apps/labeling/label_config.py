"""The Label Studio labelling configuration generated from a project's roster."""

from xml.sax.saxutils import quoteattr

FROM_NAME = "characters"
TO_NAME = "image"
DATA_KEY = "image"


THUMBNAIL_PX = 40  # a reference thumbnail beside each name: enough to recognise, small enough to fit


def label_config(roster: list[tuple[str, str]]) -> str:
    """roster: (name, reference thumbnail URL or "") sorted as annotators should see it.

    The frame and the choices side by side, the choices wrapping in their own column: at 1366×900
    every choice of a roster of a dozen or two is visible beside the frame without scrolling
    (checked in tests/e2e/test_journeys.py), and a tick is one click away from the image.

    Names and URLs come from users: every attribute is quoted and escaped, and the thumbnail's
    markup is built escaped, then escaped again as the attribute's value.
    """
    choices = []
    for name, thumbnail_url in roster:
        if thumbnail_url:
            html = (
                f"<img src={quoteattr(thumbnail_url)} height='{THUMBNAIL_PX}' alt='' style='vertical-align:middle'/>"
                f" {_text(name)}"
            )
            choices.append(f"    <Choice value={quoteattr(name)} html={quoteattr(html)}/>")
        else:
            choices.append(f"    <Choice value={quoteattr(name)}/>")
    return "\n".join(
        [
            '<View style="display: flex; gap: 16px; align-items: flex-start">',
            '  <View style="flex: 3; min-width: 0">',
            f'    <Image name="{TO_NAME}" value="${DATA_KEY}" maxWidth="100%"/>',
            "  </View>",
            '  <View style="flex: 2; min-width: 260px">',
            '    <Header value="Tick every character in the frame (none: submit with nothing ticked)" size="5"/>',
            f'    <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="multiple" showInline="true">',
            *("  " + choice for choice in choices),
            "    </Choices>",
            "  </View>",
            "</View>",
        ]
    )


def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def choices_result(names: list[str]) -> list[dict]:
    """A prediction's / annotation's result ticking these names (empty list: none ticked)."""
    if not names:
        return []
    return [{"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices", "value": {"choices": sorted(names)}}]


def names_from_result(result: list[dict]) -> list[str]:
    """The ticked names of an annotation's result (other controls and regions ignored)."""
    names: set[str] = set()
    for region in result or []:
        if isinstance(region, dict) and region.get("from_name") == FROM_NAME and region.get("type") == "choices":
            choices = (region.get("value") or {}).get("choices") or []
            names.update(str(choice) for choice in choices if isinstance(choice, str))
    return sorted(names)
