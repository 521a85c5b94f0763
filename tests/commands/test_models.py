"""The command contract: the records and `schemas/command*.v1.json` stay in step."""

from __future__ import annotations

import json
from typing import Any

from streamdesk import contracts, topics
from streamdesk.commands.models import OUTCOME_TOPIC, Command, CommandOutcome, RowChange, topic_for
from streamdesk.config import get_settings


def schema(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((get_settings().schemas_dir / name).read_text())
    return data


def test_the_records_and_their_schemas_name_the_same_fields() -> None:
    command, outcome = schema("command.v1.json"), schema("command_outcome.v1.json")
    assert set(command["properties"]) == {"schema_version", *Command.model_fields}
    assert set(command["properties"]["changes"]["items"]["properties"]) == set(RowChange.model_fields)
    assert set(outcome["properties"]) == {"schema_version", *CommandOutcome.model_fields}


def test_what_the_code_publishes_validates_on_its_registered_topic() -> None:
    change = RowChange(table="orders", entity_type="order", id="#W1", set={"status": "x"}, expect={"status": None})
    command = Command(idempotency_key="k", system="erp", tool="t", arguments={}, changes=[change], ticket_id="z:1")
    assert topics.spec(topic_for("erp")).schema == "command.v1.json" == topics.spec(command.topic).schema
    contracts.validate("command.v1.json", command.to_json())
    outcome = CommandOutcome(idempotency_key="k", system="erp", status="rejected", reason="no")
    contracts.validate(topics.spec(OUTCOME_TOPIC).schema, outcome.to_json())
