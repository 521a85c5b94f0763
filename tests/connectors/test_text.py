"""HTML and Rich Text to plain text, access tags, time and id helpers."""

from __future__ import annotations

import pytest

from connectors.access import access_from_tags, make_access
from connectors.base import ConnectorError
from connectors.text import html_to_text, rich_text_to_text
from connectors.times import parse_time, sub_ms_nanos, time_ms
from connectors.versions import to_int
from connectors.wire import unwrap_avro, unwrap_connect
from streamdesk.contracts import Access


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("", ""),
        ("plain &amp; simple", "plain & simple"),
        ("<p>a</p><p>b</p>", "a\n\nb"),
        ("<p>line<br>break</p>", "line\nbreak"),
        ("<div>  lots   of\n\n  space </div>", "lots of space"),
        ("<p>a</p><script>x()</script><div><noscript>n</noscript></div><p>kept</p><style>.a{}</style>", "a\n\nkept"),
        ("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>", "a b\nc"),
        ("<p>caf&eacute; &#8220;q&#8221;</p>", "café “q”"),
        ("<b>bold</b> and <i>italic</i>", "bold and italic"),
    ],
)
def test_html_to_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_deeply_nested_html_does_not_recurse() -> None:
    assert html_to_text("<div>" * 5000 + "deep" + "</div>" * 5000) == "deep"


def test_rich_text_to_text() -> None:
    doc = {
        "nodeType": "document",
        "content": [
            {"nodeType": "heading-1", "content": [{"nodeType": "text", "value": "Title"}]},
            {
                "nodeType": "paragraph",
                "content": [
                    {"nodeType": "text", "value": "See "},
                    {"nodeType": "hyperlink", "data": {"uri": "x"}, "content": [{"nodeType": "text", "value": "docs"}]},
                ],
            },
            {
                "nodeType": "unordered-list",
                "content": [
                    {
                        "nodeType": "list-item",
                        "content": [{"nodeType": "paragraph", "content": [{"nodeType": "text", "value": "one"}]}],
                    },
                    {
                        "nodeType": "list-item",
                        "content": [{"nodeType": "paragraph", "content": [{"nodeType": "text", "value": "two"}]}],
                    },
                ],
            },
        ],
    }
    assert rich_text_to_text(doc) == "Title\n\nSee docs\n\none\n\ntwo"


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ([], Access(level="public")),
        (["news"], Access(level="public")),
        (["access:restricted", "group:billing"], Access(level="restricted", groups=["billing"])),
        (["access.internal"], Access(level="internal")),
        (["group-support", "group_ops"], Access(level="restricted", groups=["ops", "support"])),
        (["accessInternal"], Access(level="public")),
    ],
)
def test_access_from_tags(tags: list[str], expected: Access) -> None:
    assert access_from_tags(tags, default=Access(level="public")) == expected


def test_bad_access_levels_are_errors() -> None:
    with pytest.raises(ConnectorError, match="'secret' is not an access level"):
        access_from_tags(["access:secret"], default=Access())
    with pytest.raises(ConnectorError, match="not an access level"):
        make_access("everyone")


def test_times_and_ints() -> None:
    assert time_ms("2025-01-08T10:12:07.672717030Z", what="t") == 1736331127672
    assert sub_ms_nanos("2025-01-08T10:12:07.672717030Z") == 717030
    assert sub_ms_nanos("2025-01-08T10:12:07Z") == 0
    assert time_ms("2020-01-31 14:12:44", what="t") == 1580479964000
    assert time_ms(1_600_000_000, what="t", unit="s") == 1_600_000_000_000
    assert parse_time("1600000000000", what="t") == parse_time(1_600_000_000_000, what="t")
    assert to_int("42", what="n") == 42 and to_int(3.0, what="n") == 3 and to_int("7.0", what="n") == 7
    for bad in (True, "x", 1.5, None, [1]):
        with pytest.raises(ConnectorError, match="must be an integer"):
            to_int(bad, what="n")
    with pytest.raises(ConnectorError, match="missing or not a time"):
        parse_time(None, what="t")


def test_wire_unwrapping() -> None:
    assert unwrap_connect({"schema": {}, "payload": {"id": 1}}) == {"id": 1}
    assert unwrap_connect({"payload": {"id": 1}, "other": 2}) == {"payload": {"id": 1}, "other": 2}
    assert unwrap_avro({"a": {"string": "x"}, "b": {"ns.Rec.Value": {"c": {"long": 3}}}, "d": {"x": 1, "y": 2}}) == {
        "a": "x",
        "b": {"c": 3},
        "d": {"x": 1, "y": 2},
    }
