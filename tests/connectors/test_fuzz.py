"""Property tests: whatever a vendor sends, a connector returns valid events or raises ConnectorError."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.base import ConnectorError, RawMessage
from connectors.registry import connector_for
from tests.connectors.helpers import lines, load, message, valid

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["", "c", "u", "d", "UPDATE", "publish", "__debezium_unavailable_value", "2025-01-08T10:12:07Z"])
    | st.sampled_from(["²", "-²", "١٢٣", "NaN", "Infinity", "-inf", "1e400", "9" * 5000]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


WP_POST = {
    "id": 4,
    "modified_gmt": "2017-02-14T00:00:00",
    "status": "publish",
    "type": "post",
    "title": {"rendered": "T"},
    "content": {"rendered": "<p>x</p>", "protected": False},
    "link": "http://x",
}


def seeds() -> dict[str, tuple[str, Any, dict[str, str]]]:
    docs = lines("debezium", "debezium_docs_postgres_customers_events.jsonl")
    contentful = load("contentful", "entry_publish_rich_text.json")
    return {
        "debezium": ("raw.debezium.customers", docs[1]["value"], {}),
        "debezium_flat": ("raw.debezium.orders", {"id": 1, "__lsn": 5, "__deleted": "false"}, {}),
        "salesforce": ("raw.salesforce", load("salesforce", "pozil_pubsub_account_change_event_update.json"), {}),
        "salesforce_connect": (
            "raw.salesforce",
            load("salesforce", "kdp_salesforce_pushtopic_lead_connect_json.json"),
            {},
        ),
        "hubspot": ("raw.hubspot", load("hubspot", "webhook_batch.json")[:3], {}),
        "zendesk": ("raw.zendesk", lines("zendesk", "dust_zendesk_ticket_webhook_events.jsonl")[1], {}),
        "wordpress": ("raw.wordpress", WP_POST, {}),
        "contentful": ("raw.contentful", contentful["body"], contentful["headers"]),
        "stripe": ("raw.stripe", load("erp", "stripe_openapi_fixtures3_billing_subset.json")["resources"]["event"], {}),
        "mapped_kb": ("raw.mapped", {"id": "a", "title": "t", "text": "x", "groups": ["g"]}, {"mapping": "kb_article"}),
        "mapped_servicenow": (
            "raw.mapped",
            load("servicenow", "kdp_servicenow_incident_connect_json.json")["payload"],
            {"mapping": "servicenow_incident"},
        ),
    }


SEEDS = seeds()


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*prefix, index))
    return found


def replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    result = copy.deepcopy(value)
    node = result
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = new
    return result


def check(raw: RawMessage) -> None:
    family = raw.topic.split(".")[1]
    try:
        events = connector_for(family).parse(raw)
    except ConnectorError:
        return
    valid(events)


RAW_TOKENS = [b"NaN", b"-Infinity", b"1e400", b"9" * 5000, b'"\\ud800"', b'{"\\udfff": 1}', b"[" * 5000 + b"]" * 5000]
"""JSON-ish text that json.dumps never writes: what a careless or hostile producer can still send."""
SENTINEL = "__raw_token__"


@pytest.mark.parametrize("seed", sorted(SEEDS))
@settings(max_examples=160, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_mutated_payloads_give_valid_events_or_connector_errors(seed: str, data: st.DataObject) -> None:
    topic, value, headers = SEEDS[seed]
    choices = paths(value)
    path = choices[data.draw(st.integers(min_value=0, max_value=len(choices) - 1), label="path")]
    new = data.draw(JSON | st.sampled_from(RAW_TOKENS), label="new value")
    if isinstance(new, bytes):
        mutated = json.dumps(replaced(value, path, SENTINEL)).encode().replace(f'"{SENTINEL}"'.encode(), new)
    else:
        mutated = replaced(value, path, new)
    keys = st.none() | JSON | st.sampled_from(RAW_TOKENS)
    key = data.draw(keys, label="key") if seed.startswith("debezium") else None
    check(message(topic, mutated, key=key, headers=headers))


@pytest.mark.parametrize(
    "topic",
    [
        "raw.debezium.customers",
        "raw.salesforce",
        "raw.hubspot",
        "raw.zendesk",
        "raw.wordpress",
        "raw.contentful",
        "raw.stripe",
        "raw.mapped",
    ],
)
@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(value=JSON)
def test_arbitrary_json_gives_valid_events_or_connector_errors(topic: str, value: Any) -> None:
    check(
        message(
            topic, value, headers={"mapping": "kb_article", "X-Contentful-Topic": "ContentManagement.Entry.publish"}
        )
    )


@pytest.mark.parametrize("raw", [b"\xff\xfe", b"{not json", b'{"a": ' * 100_000, b"[" * 100_000])
@pytest.mark.parametrize("topic", ["raw.debezium.customers", "raw.salesforce", "raw.mapped"])
def test_undecodable_bytes_are_connector_errors(topic: str, raw: bytes) -> None:
    with pytest.raises(ConnectorError):
        connector_for(topic.split(".")[1]).parse(
            RawMessage(topic=topic, value=raw, key=None, headers={"mapping": "kb_article"})
        )


def test_seeds_themselves_are_fine() -> None:
    for topic, value, headers in SEEDS.values():
        assert valid(
            connector_for(topic.split(".")[1]).parse(message(topic, json.loads(json.dumps(value)), headers=headers))
        )
