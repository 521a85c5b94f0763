"""The reply contract (`schemas/reply.v1.json`) and the code's `Reply` stay in step; answers become auto replies."""

from __future__ import annotations

import json

import jsonschema
import pytest

from streamdesk import contracts, topics
from streamdesk.config import get_settings
from streamdesk.delivery.models import REPLY_TOPIC, AnswerOnTopic, Reply
from streamdesk.exceptions import ContractError
from tests.delivery.conftest import auto_reply
from tests.factories import draft, ticket_event


def schema() -> dict[str, object]:
    return dict(json.loads((get_settings().schemas_dir / "reply.v1.json").read_text()))


@pytest.mark.parametrize(
    "reply",
    [
        auto_reply(1),
        auto_reply(2).model_copy(update={"kind": "follow_up", "reply_id": "follow-up:a1", "action_id": "a1"}),
        auto_reply(3).model_copy(update={"kind": "edited", "ticket_status": "solved"}),
    ],
)
def test_every_reply_the_code_makes_matches_the_schema(reply: Reply) -> None:
    jsonschema.Draft202012Validator(schema()).validate(reply.to_json())
    contracts.validate(topics.spec(REPLY_TOPIC).schema, reply.to_json())


def test_the_schema_and_the_record_name_the_same_fields() -> None:
    assert set(schema()["properties"]) == set(Reply.model_fields)  # type: ignore[call-overload]


def test_the_schema_refuses_a_reply_without_text_or_with_an_unknown_kind() -> None:
    for bad in ({"text": ""}, {"kind": "draft"}):
        with pytest.raises(ContractError):
            contracts.validate(topics.spec(REPLY_TOPIC).schema, auto_reply(1).to_json() | bad)


def test_only_an_auto_reply_on_the_answer_topic_goes_out() -> None:
    ticket = ticket_event("77")
    sent = AnswerOnTopic.model_validate(draft(ticket, "Shipped.", status="auto_reply").to_event()).reply()
    assert sent is not None and sent.kind == "auto_reply" and sent.reply_id == sent.answer_id
    assert sent.ticket_id == "77" and sent.text == "Shipped."
    for status in ("draft", "pending_approval", "escalated"):
        assert AnswerOnTopic.model_validate(draft(ticket, "x", status=status).to_event()).reply() is None
