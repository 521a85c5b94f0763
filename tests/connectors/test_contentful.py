"""Contentful entry webhooks -> DocumentEvents (fixtures written by us from the documented shape)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from connectors.base import ConnectorError
from connectors.contentful import ContentfulConnector
from streamdesk.contracts import Access, DocumentEvent
from tests.connectors.helpers import load, message, raw_valid, valid

TOPIC = "raw.contentful"


@pytest.fixture
def connector() -> ContentfulConnector:
    return ContentfulConnector()


def webhook(name: str) -> dict[str, Any]:
    return load("contentful", f"{name}.json")


def parse(connector: ContentfulConnector, name: str, **changes: Any) -> list[DocumentEvent]:
    hook = webhook(name)
    raw_valid("contentful", hook["body"])
    headers = {**hook["headers"], **changes.pop("headers", {})}
    events = valid(connector.parse(message(TOPIC, hook["body"], headers=headers)))
    assert all(isinstance(e, DocumentEvent) for e in events)
    return events


def test_publish_rich_text_entry(connector: ContentfulConnector) -> None:
    [doc] = parse(connector, "entry_publish_rich_text")
    assert (doc.external_id, doc.op, doc.doc_type, doc.language) == (
        "5KsDBWseXY6QegucYAoacS",
        "upsert",
        "helpArticle",
        "en-US",
    )
    assert doc.title == "Refunds for annual plans"
    assert doc.body == (
        "Refunds for annual plans\n\n"
        "Annual plans are refunded pro rata within 14 days. See billing help.\n\n"
        "Open Settings → Billing\n\n"
        "Choose “Request refund”\n\n"
        "Contact billing@example.com for exceptions."
    )
    assert doc.access == Access(level="restricted", groups=["billing", "support-tier2"])
    assert doc.version == [1741091445123, 3]
    assert doc.metadata["space"] == "yadj1kx9rmg0"


def test_publish_markdown_entry_uses_alternative_field_names(connector: ContentfulConnector) -> None:
    [doc] = parse(connector, "entry_publish_markdown")
    assert doc.title == "How do I reset my password?"
    assert doc.body.startswith("Use **Forgot password**")
    assert (doc.doc_type, doc.access) == ("faq", Access(level="public"))


@pytest.mark.parametrize("name", ["entry_unpublish", "entry_delete", "entry_archive"])
def test_unpublish_delete_and_archive_remove_the_document(connector: ContentfulConnector, name: str) -> None:
    [published] = parse(connector, "entry_publish_rich_text")
    [doc] = parse(connector, name)
    assert (doc.op, doc.external_id, doc.body) == ("delete", "5KsDBWseXY6QegucYAoacS", "")
    assert doc.version > published.version


def test_the_topic_header_is_case_insensitive(connector: ContentfulConnector) -> None:
    hook = webhook("entry_publish_rich_text")
    [doc] = connector.parse(
        message(TOPIC, hook["body"], headers={"x-contentful-topic": "ContentManagement.Entry.publish"})
    )
    assert doc.op == "upsert"


@pytest.mark.parametrize("action", ["create", "save", "auto_save", "unarchive"])
def test_draft_actions_are_no_ops(connector: ContentfulConnector, action: str) -> None:
    assert (
        parse(connector, "entry_publish_rich_text", headers={"X-Contentful-Topic": f"ContentManagement.Entry.{action}"})
        == []
    )


def test_deleted_entry_without_header_is_a_delete_but_an_entry_needs_the_header(connector: ContentfulConnector) -> None:
    [doc] = connector.parse(message(TOPIC, webhook("entry_delete")["body"]))
    assert doc.op == "delete"
    with pytest.raises(ConnectorError, match="x-contentful-topic"):
        connector.parse(message(TOPIC, webhook("entry_publish_rich_text")["body"]))


def test_other_locale_and_url_template() -> None:
    connector = ContentfulConnector(locale="de-DE", url_template="https://help.example.com/{slug}")
    [doc] = parse(connector, "entry_publish_rich_text")
    assert doc.title == "Rückerstattung für Jahrespläne"
    assert doc.url == "https://help.example.com/refunds-annual-plans"


@pytest.mark.parametrize(
    ("topic", "match"),
    [
        ("ContentManagement.Entry.explode", "unknown Contentful entry action 'explode'"),
        ("ContentManagement.Asset.publish", "unsupported Contentful topic"),
        ("nonsense", "unsupported Contentful topic"),
    ],
)
def test_unknown_topics_are_errors(connector: ContentfulConnector, topic: str, match: str) -> None:
    with pytest.raises(ConnectorError, match=match):
        connector.parse(
            message(TOPIC, webhook("entry_publish_rich_text")["body"], headers={"X-Contentful-Topic": topic})
        )


def test_malformed_bodies_are_errors(connector: ContentfulConnector) -> None:
    headers = {"X-Contentful-Topic": "ContentManagement.Entry.publish"}
    body = copy.deepcopy(webhook("entry_publish_rich_text")["body"])
    body["fields"]["body"]["en-US"] = 42
    with pytest.raises(ConnectorError, match="not text or a Rich Text"):
        connector.parse(message(TOPIC, body, headers=headers))
    with pytest.raises(ConnectorError, match="'sys' object"):
        connector.parse(message(TOPIC, {"fields": {}}, headers=headers))
    del body["sys"]["id"]
    with pytest.raises(ConnectorError, match=r"no sys\.id"):
        connector.parse(message(TOPIC, body, headers=headers))
    bad_tag = copy.deepcopy(webhook("entry_publish_rich_text")["body"])
    bad_tag["metadata"]["tags"].append({"sys": {"id": "access.secret"}})
    with pytest.raises(ConnectorError, match="not an access level"):
        connector.parse(message(TOPIC, bad_tag, headers=headers))
