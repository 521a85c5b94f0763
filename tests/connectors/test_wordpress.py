"""WordPress REST API v2 objects -> DocumentEvents (fixture read from shared/data: it is GPL)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from connectors.base import ConnectorError
from connectors.wordpress import WordPressConnector
from streamdesk.contracts import Access, DocumentEvent
from tests.connectors.helpers import message, raw_valid, valid

TOPIC = "raw.wordpress"


@pytest.fixture(scope="module")
def wp(shared_data: Path) -> dict[str, Any]:
    return json.loads((shared_data / "cdc" / "wordpress" / "wp_rest_api_v2_fixture_posts_pages.json").read_text())


@pytest.fixture
def connector() -> WordPressConnector:
    return WordPressConnector()


def documents(connector: WordPressConnector, value: Any) -> list[DocumentEvent]:
    raw_valid("wordpress", value)
    events = valid(connector.parse(message(TOPIC, value)))
    assert all(isinstance(e, DocumentEvent) for e in events)
    return events


def test_post_model_becomes_a_public_document_with_clean_text(connector: WordPressConnector, wp: dict) -> None:
    [doc] = documents(connector, wp["PostModel"])
    assert (doc.external_id, doc.op, doc.doc_type) == ("4", "upsert", "post")
    assert doc.title == "REST API Client Fixture: Post"
    assert doc.body == "Updated post content."
    assert doc.url == "http://example.org/?p=4"
    assert doc.access == Access(level="public")
    assert doc.version == [1487030400000, 4]
    assert doc.metadata["excerpt"] == "REST API Client Fixture: Post"


def test_collections_yield_one_event_per_object(connector: WordPressConnector, wp: dict) -> None:
    assert [d.external_id for d in documents(connector, wp["PostsCollection"])] == ["4"]
    [page] = documents(connector, wp["PagesCollection"])
    assert (page.external_id, page.doc_type, page.body) == ("7", "page", "Updated page content.")
    both = documents(connector, wp["PostsCollection"] + wp["PagesCollection"])
    assert [d.external_id for d in both] == ["4", "7"]


def test_a_page_with_a_parent_page_is_not_a_revision(connector: WordPressConnector, wp: dict) -> None:
    child = {**wp["PageModel"], "id": 8, "parent": 7}
    [doc] = documents(connector, child)
    assert (doc.external_id, doc.doc_type) == ("8", "page")


def test_revisions_update_the_parent_and_autosaves_are_skipped(connector: WordPressConnector, wp: dict) -> None:
    [doc] = documents(connector, wp["postRevisions"])  # [autosave 6, revision 5]
    assert (doc.external_id, doc.doc_type, doc.metadata["revision_id"]) == ("4", "post", 5)
    assert doc.version == [1487030400000, 5]
    [post] = documents(connector, wp["PostModel"])
    assert doc.version > post.version
    [single] = documents(connector, wp["revision"])
    assert single.event_id == doc.event_id


@pytest.mark.parametrize(("status", "level"), [("private", "internal"), ("draft", "internal"), ("future", "internal")])
def test_unpublished_statuses_are_internal(connector: WordPressConnector, wp: dict, status: str, level: str) -> None:
    [doc] = documents(connector, {**wp["PostModel"], "status": status})
    assert (doc.op, doc.access.level) == ("upsert", level)


def test_trash_and_delete_responses_delete(connector: WordPressConnector, wp: dict) -> None:
    [trashed] = documents(connector, {**wp["PostModel"], "status": "trash"})
    assert (trashed.op, trashed.body) == ("delete", "")
    [deleted] = documents(connector, {"deleted": True, "previous": wp["PostModel"]})
    assert (deleted.op, deleted.external_id) == ("delete", "4")


def test_password_protected_content_is_restricted(connector: WordPressConnector, wp: dict) -> None:
    post = copy.deepcopy(wp["PostModel"])
    post["content"]["protected"] = True
    [doc] = documents(connector, post)
    assert doc.access == Access(level="restricted")


def test_html_is_cleaned(connector: WordPressConnector, wp: dict) -> None:
    post = copy.deepcopy(wp["PostModel"])
    post["title"]["rendered"] = "Tips &amp; Tricks &#8211; Part&nbsp;1"
    post["content"]["rendered"] = (
        "<style>p{color:red}</style><h2>Intro</h2><p>First &lt;para&gt;.</p>\n"
        "<script>alert(1)</script><ul><li>one</li><li>two</li></ul><p>Last<br/>line</p>"
    )
    [doc] = documents(connector, post)
    assert doc.title == "Tips & Tricks \u2013 Part 1"
    assert doc.body == "Intro\n\nFirst <para>.\n\none\ntwo\n\nLast\nline"


def test_configurable_default_access(wp: dict) -> None:
    connector = WordPressConnector(default_access=Access(level="restricted", groups=["staff"]))
    [doc] = documents(connector, wp["PostModel"])
    assert doc.access.groups == ["staff"]


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"id": None}, "has no id"),
        ({"id": "four"}, "WordPress id must be an integer"),
        ({"modified_gmt": None}, "no modified_gmt"),
        ({"modified_gmt": "14/02/2017"}, "not an ISO-8601"),
    ],
)
def test_malformed_objects_are_errors(connector: WordPressConnector, wp: dict, change: dict, match: str) -> None:
    with pytest.raises(ConnectorError, match=match):
        connector.parse(message(TOPIC, {**wp["PostModel"], **change}))


def test_non_object_items_are_errors(connector: WordPressConnector) -> None:
    with pytest.raises(ConnectorError, match="#0 must be a JSON object"):
        connector.parse(message(TOPIC, [1]))
